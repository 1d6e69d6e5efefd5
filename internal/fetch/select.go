package fetch

import (
	"errors"
	"strings"
)

// Selector names a set of entries of one provider, for bulk injection
// (run --env-from) and the template list functions (passworkEntries…).
// It is written, after the provider, as
//
//	prod/app        the entries directly in folder "app" of vault "prod"
//	prod/app/**     the same and every entry in the folders below it
//	prod            the entries at the top of vault "prod" (prod/** for all)
//	tag:db          every entry tagged "db", wherever it is
//	tag:db,prod     every entry tagged both "db" and "prod"
//
// Folders are not recursive by default: a selection exports only what its
// author can see in one listing, and a folder added below it later does
// not silently widen what a process receives.
type Selector struct {
	Provider  string
	Tag       string // set: a tag selection ("db", or "db,prod": all of them); Path is then empty
	Path      string // folder path, vault first, without "/**"
	Recursive bool
}

// ParseSelector parses a selection as written after the provider
// ("prod/app", "prod/app/**", "tag:db").
func ParseSelector(provider, s string) (Selector, error) {
	sel := Selector{Provider: provider}
	if tag, ok := strings.CutPrefix(s, "tag:"); ok {
		for _, t := range strings.Split(tag, ",") {
			if strings.TrimSpace(t) == "" {
				return sel, errors.New("empty tag; want tag:NAME or tag:NAME,NAME… (entries with every tag)")
			}
		}
		sel.Tag = tag
		return sel, nil
	}
	if p, ok := strings.CutSuffix(s, "/**"); ok {
		s, sel.Recursive = p, true
	}
	var segs []string
	for _, seg := range strings.Split(s, "/") {
		if seg == "**" || seg == "*" {
			return sel, errors.New("only a final /** is a wildcard (a folder and everything below it)")
		}
		if seg != "" {
			segs = append(segs, seg)
		}
	}
	if len(segs) == 0 {
		return sel, errors.New("empty folder path; want FOLDER[/**] or tag:NAME")
	}
	sel.Path = strings.Join(segs, "/")
	return sel, nil
}

// String is the selection as written after the provider.
func (s Selector) String() string {
	switch {
	case s.Tag != "":
		return "tag:" + s.Tag
	case s.Recursive:
		return s.Path + "/**"
	}
	return s.Path
}

// Tagged reports whether an entry with the tags has every tag of a tag
// selection. Tags compare exactly, case included.
func (s Selector) Tagged(tags []string) bool {
	for _, want := range strings.Split(s.Tag, ",") {
		found := false
		for _, t := range tags {
			found = found || t == want
		}
		if !found {
			return false
		}
	}
	return true
}

// Segments splits a folder selection's path into its segments.
func (s Selector) Segments() []string { return strings.Split(s.Path, "/") }

// Contains reports whether an entry whose folder path (vault first, the
// entry's own name excluded) is folder belongs to a folder selection.
func (s Selector) Contains(folder string) bool {
	if folder == s.Path {
		return true
	}
	return s.Recursive && strings.HasPrefix(folder, s.Path+"/")
}

// Entry is one entry of a selection, decrypted. Its name and path come
// from the server: they are data, never trusted as names of anything
// injector or the child process acts on without checks.
type Entry struct {
	ID     string // the provider's id, to tell two entries of one name apart
	Name   string
	Path   string // folder path and name, vault first: "prod/app/db"
	Fields []Field
}

// Field is one named value of an entry. Custom marks the user-defined
// fields (Passwork custom fields, Passbolt's custom fields), which bulk
// injection exports besides the password.
type Field struct {
	Name, Value string
	Custom      bool
}

// Value returns the value of the field named name, and whether it exists.
func (e Entry) Value(name string) (string, bool) {
	for _, f := range e.Fields {
		if f.Name == name {
			return f.Value, true
		}
	}
	return "", false
}

// Listing is the outcome of one Selector: its entries, in path order, or
// the reason the selection could not be listed (a folder that does not
// exist, with what does). Err never contains a secret value.
type Listing struct {
	Entries []Entry
	Err     error
}
