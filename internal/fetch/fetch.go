// Package fetch holds what every secret provider shares: the reference a
// template names, the result of resolving it, the errors that explain a miss,
// and an HTTP transport that retries the way every provider needs.
//
// Providers live in sub-packages (passwork, passbolt, passagent). Each
// exposes a type with the method
//
//	Resolve(ctx context.Context, refs []fetch.Ref) ([]fetch.Result, error)
//
// which resolves a whole batch at once so that N secrets cost O(folders)
// requests, not O(N). The returned error is for failures that affect the
// whole batch (authentication, transport); per-reference failures go into
// Result.Err, index-aligned with refs.
package fetch

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// Ref names one secret value: which provider, which entry and which field.
// Path is either a slash-separated path ("Vault/Folder/Name") or "id:<id>".
type Ref struct {
	Provider string
	Path     string
	Field    string
}

// String renders the reference the way it is written in a template, so an
// error message can be pasted back into one.
func (r Ref) String() string {
	return fmt.Sprintf("%s %q %q", r.Provider, r.Path, r.Field)
}

// ID returns the id of an "id:<id>" reference and whether it is one.
func (r Ref) ID() (string, bool) {
	return strings.CutPrefix(r.Path, "id:")
}

// Segments splits a path reference into its non-empty segments.
// Leading and trailing slashes are ignored; "a//b" is two segments.
func (r Ref) Segments() []string {
	n := 0 // counted first: one allocation, every reference is split on every refresh
	for s := range strings.SplitSeq(r.Path, "/") {
		if s != "" {
			n++
		}
	}
	out := make([]string, 0, n)
	for s := range strings.SplitSeq(r.Path, "/") {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

// Result is the outcome of resolving one Ref. Value holds the secret; it may
// hold arbitrary bytes (attachments). Err is non-nil when the reference could
// not be resolved; it never contains a secret value.
type Result struct {
	Value string
	Err   error
}

// ErrConfig is matched (errors.Is) by errors in a provider's settings:
// missing or malformed, found before any request is made. The command line
// reports them as configuration errors (exit 2), not as secrets that
// failed to resolve.
var ErrConfig = errors.New("configuration error")

// ConfigError marks err as an error in the settings; the message is err's.
func ConfigError(err error) error {
	if err == nil {
		return nil
	}
	return configError{err}
}

type configError struct{ error }

func (e configError) Unwrap() error        { return e.error }
func (e configError) Is(target error) bool { return target == ErrConfig }

// ErrNotFound is matched (errors.Is) by every NotFoundError.
var ErrNotFound = errors.New("not found")

// NotFoundError says which part of a reference does not exist and what does
// exist next to it, so a typo is easy to spot.
type NotFoundError struct {
	Kind   string   // "vault", "folder", "entry", "field", "attachment", "resource"…
	Name   string   // the name that was looked for
	Within string   // where it was looked for ("vault \"prod\""), may be empty
	Nearby []string // names that do exist at that place (names only, never values)
	// Folder, when set, is the path of a folder found where an entry was
	// asked for; Nearby then lists what it holds (entries by their path,
	// folders ending in "/").
	Folder string
}

func (e *NotFoundError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %q not found", e.Kind, e.Name)
	if e.Within != "" {
		fmt.Fprintf(&b, " in %s", e.Within)
	}
	if e.Folder != "" {
		fmt.Fprintf(&b, ": %q is a folder", e.Folder)
		if len(e.Nearby) > 0 {
			b.WriteString(", holding ")
			b.WriteString(QuoteList(e.Nearby, 10))
		}
		return b.String()
	}
	if len(e.Nearby) > 0 {
		b.WriteString("; available: ")
		b.WriteString(QuoteList(e.Nearby, 10))
	}
	return b.String()
}

func (e *NotFoundError) Is(target error) bool { return target == ErrNotFound }

// ErrAmbiguous is matched (errors.Is) by every AmbiguousError.
var ErrAmbiguous = errors.New("ambiguous")

// AmbiguousError reports that a path matches more than one entry. The
// candidates' ids let the user switch to the unambiguous "id:" form.
type AmbiguousError struct {
	Kind       string // "entry", "folder"…
	Name       string
	Candidates []string // ids
}

func (e *AmbiguousError) Error() string {
	return fmt.Sprintf("%s %q is ambiguous: %d matches (ids %s); use the \"id:<id>\" form",
		e.Kind, e.Name, len(e.Candidates), QuoteList(e.Candidates, 10))
}

func (e *AmbiguousError) Is(target error) bool { return target == ErrAmbiguous }

// Count is "1 entry", "2 entries": n with the noun in singular or plural.
func Count(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

// QuoteList formats names as a sorted, quoted, comma-separated list, cut
// after max entries.
func QuoteList(names []string, max int) string {
	s := append([]string(nil), names...)
	sort.Strings(s)
	var b strings.Builder
	for i, n := range s {
		if i == max {
			fmt.Fprintf(&b, ", … (%d more)", len(s)-max)
			break
		}
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%q", n)
	}
	return b.String()
}

// EditDistance is the Levenshtein distance between a and b, in runes: how
// far a typo is from a name that exists.
func EditDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}
