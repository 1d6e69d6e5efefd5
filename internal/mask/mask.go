// Package mask replaces secret values in a byte stream, such as a child
// process's stdout, before they reach a log.
//
// The stream is masked as it flows: a Writer holds back only the bytes that
// might be the start of a secret continued by the next Write, so a value
// split across writes is still caught, and everything else passes through
// at once.
package mask

import (
	"io"
	"slices"
	"sync"
)

// Replacement is what the CLI writes in place of a secret.
const Replacement = "********"

// MinLen is the shortest secret that is masked. Shorter values ("1", "on",
// "yes") occur everywhere in ordinary output: masking them would garble the
// stream while hiding nothing an attacker could not guess anyway.
const MinLen = 4

// Writer masks secrets in everything written to it and passes the result
// to the underlying writer. It is safe for concurrent use. Close (or
// Flush) must be called at the end of the stream to emit the held-back
// tail.
//
// Matching is leftmost-first and, among secrets starting at the same byte,
// longest-first, without overlaps: exactly what strings.Replacer does with
// the secrets ordered longest first.
type Writer struct {
	mu      sync.Mutex
	w       io.Writer
	repl    []byte
	current []string // the latest set given to NewWriter or Update
	retired []string // earlier values, most recently retired first; see Update
	secrets [][]byte // current and retired, longest first
	first   [256]bool
	buf     []byte // held back: a possible prefix of a secret
	out     []byte // scratch for the masked output
}

// NewWriter returns a Writer that writes to w with every secret of at least
// MinLen bytes replaced by replacement.
func NewWriter(w io.Writer, secrets []string, replacement string) *Writer {
	mw := &Writer{w: w, repl: []byte(replacement), current: slices.Clone(secrets)}
	mw.setSecrets()
	return mw
}

// MaxRetired is how many values Update keeps masking after they left the
// secret set.
const MaxRetired = 64

// Update sets the current secrets, for when a daemon refresh resolved new
// values. Values that are no longer current stay masked, because a child
// that is not restarted (or is still shutting down) keeps printing the
// value it started with: up to MaxRetired of them, the most recently
// retired first. Bytes already held back are matched against the new set.
func (w *Writer) Update(secrets []string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var retired []string
	for _, s := range w.current {
		if len(s) >= MinLen && !slices.Contains(secrets, s) && !slices.Contains(retired, s) {
			retired = append(retired, s)
		}
	}
	for _, s := range w.retired {
		if !slices.Contains(secrets, s) && !slices.Contains(retired, s) {
			retired = append(retired, s)
		}
	}
	if len(retired) > MaxRetired {
		retired = retired[:MaxRetired]
	}
	w.current, w.retired = slices.Clone(secrets), retired
	w.setSecrets()
}

func (w *Writer) setSecrets() {
	w.secrets = w.secrets[:0]
	w.first = [256]bool{}
	seen := map[string]bool{}
	for _, s := range slices.Concat(w.current, w.retired) {
		if len(s) < MinLen || seen[s] {
			continue
		}
		seen[s] = true
		w.secrets = append(w.secrets, []byte(s))
		w.first[s[0]] = true
	}
	slices.SortStableFunc(w.secrets, func(a, b []byte) int { return len(b) - len(a) })
}

// Write masks p and writes what is safe to write now. It reports len(p)
// on success, as the caller's bytes were all consumed.
func (w *Writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	if err := w.drain(false); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Flush writes the held-back tail: at the end of the stream a prefix of a
// secret is just text.
func (w *Writer) Flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.drain(true)
}

// Close flushes. It does not close the underlying writer, which the caller
// owns.
func (w *Writer) Close() error { return w.Flush() }

// drain masks w.buf and writes it out, keeping back a trailing possible
// secret prefix unless final.
func (w *Writer) drain(final bool) error {
	out := w.out[:0]
	i := 0
scan:
	for i < len(w.buf) {
		if !w.first[w.buf[i]] {
			out = append(out, w.buf[i])
			i++
			continue
		}
		rest := w.buf[i:]
		for _, s := range w.secrets {
			if len(rest) >= len(s) {
				if string(rest[:len(s)]) == string(s) {
					out = append(out, w.repl...)
					i += len(s)
					continue scan
				}
				continue
			}
			// rest is shorter than s: if it is a prefix of s, more data
			// decides, and a longer secret must win over a shorter one
			// already complete here.
			if !final && string(s[:len(rest)]) == string(rest) {
				break scan
			}
		}
		out = append(out, w.buf[i])
		i++
	}
	w.buf = append(w.buf[:0], w.buf[i:]...)
	w.out = out
	if len(out) == 0 {
		return nil
	}
	_, err := w.w.Write(out)
	return err
}
