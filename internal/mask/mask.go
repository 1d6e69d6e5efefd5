// Package mask replaces secret values in a byte stream, such as a child
// process's stdout, before they reach a log.
//
// The stream is masked as it flows: a Writer holds back only the bytes that
// might be the start of a secret continued by the next Write, so a value
// split across writes is still caught, and everything else passes through
// at once. Matching runs an Aho–Corasick automaton, so its cost per byte
// does not grow with the number of secrets.
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
	masked  []string // current and retired, deduplicated: what a is built from
	a       *automaton
	buf     []byte // held back: a possible prefix of a secret
	out     []byte // scratch for the masked output

	// The scan's state over buf, kept between writes.
	state   int32 // automaton state after buf[:scanned]
	scanned int
	found   bool // a match [start, end) in buf waits to be known the leftmost-longest
	start   int
	end     int
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

// setSecrets rebuilds the automaton if the set to mask changed (a daemon
// calls Update after every refresh, mostly with the same values), and
// rescans what is held back against it.
func (w *Writer) setSecrets() {
	var masked []string
	seen := map[string]bool{}
	for _, s := range slices.Concat(w.current, w.retired) {
		if len(s) < MinLen || seen[s] {
			continue
		}
		seen[s] = true
		masked = append(masked, s)
	}
	if w.a != nil && slices.Equal(masked, w.masked) {
		return
	}
	w.masked = masked
	secrets := make([][]byte, len(masked))
	for i, s := range masked {
		secrets[i] = []byte(s)
	}
	w.a = newAutomaton(secrets)
	w.state, w.scanned, w.found = 0, 0, false
}

// Write masks p and writes what is safe to write now. It reports len(p)
// on success, as the caller's bytes were all consumed.
func (w *Writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	in := p
	if len(w.buf) > 0 {
		w.buf = append(w.buf, p...)
		in = w.buf
	}
	if err := w.drain(in, false); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Flush writes the held-back tail: at the end of the stream a prefix of a
// secret is just text.
func (w *Writer) Flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.drain(w.buf, true)
}

// Close flushes. It does not close the underlying writer, which the caller
// owns.
func (w *Writer) Close() error { return w.Flush() }

// drain scans buf (the held-back bytes followed by the new ones: w.buf,
// or the caller's slice when nothing was held back), writes out
// everything that is decided (text that cannot be part of a secret, and
// replacements for the secrets found) and keeps the rest in w.buf,
// unless final: at the end of the stream nothing is pending any more.
//
// The scan is leftmost-longest. After each byte the automaton gives the
// longest secret ending there, whose start is the earliest of all secrets
// ending there, and the longest suffix of the input that a secret may
// still continue (node.live). A match found is the leftmost-longest once
// no such suffix starts at or before its start: only one could still grow
// into a secret that starts earlier, or as early and ends later. It is then
// replaced, and the scan starts afresh after it (matches do not overlap).
func (w *Writer) drain(buf []byte, final bool) error {
	a := w.a
	nodes, rows, class, stride, dense := a.nodes, a.rows, &a.class, a.stride, a.dense
	out := w.out[:0]
	done := 0 // buf[:done] has been written to out, or replaced
	st, j := w.state, w.scanned
	found, start, end := w.found, w.start, w.end
	for {
		for j < len(buf) {
			if st == 0 && !found {
				// Fast path: at the root, skip bytes that start no secret.
				for j < len(buf) && rows[class[buf[j]]] == 0 {
					j++
				}
				if j == len(buf) {
					break
				}
			}
			var next int32
			if st < dense {
				next = rows[int(st)*stride+int(class[buf[j]])]
			} else {
				next = a.step(st, buf[j])
			}
			j++
			st = next &^ matchFlag
			if next >= 0 && !found {
				continue // no match here, none pending: nothing to decide
			}
			n := &nodes[st]
			if n.match > 0 {
				if s := j - int(n.match); !found || s < start || s == start && j > end {
					found, start, end = true, s, j
				}
			}
			if found && j-int(n.live) > start {
				out = append(append(out, buf[done:start]...), w.repl...)
				done, j, st, found = end, end, 0, false
			}
		}
		if !final || !found {
			break
		}
		// At the end of the stream no prefix is in progress: the match
		// found is decided. Replace it and scan what follows it.
		out = append(append(out, buf[done:start]...), w.repl...)
		done, j, st, found = end, end, 0, false
	}
	// Everything before the match found and before the suffix a secret
	// may still continue (which may start earlier: a longer secret
	// beginning before the match) is text; the rest waits for more input.
	keep := j - int(nodes[st].live)
	if found {
		keep = min(keep, start)
	}
	if final {
		keep, st = len(buf), 0
	}
	text := buf[:keep] // nothing replaced: write the input as it is
	if done > 0 {
		out = append(out, buf[done:keep]...)
		w.out, text = out, out
	}
	var err error
	if len(text) > 0 {
		_, err = w.w.Write(text)
	}
	w.buf = append(w.buf[:0], buf[keep:]...) // may overlap: append copies like memmove
	w.state, w.scanned = st, j-keep
	w.found, w.start, w.end = found, start-keep, end-keep
	return err
}
