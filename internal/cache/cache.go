// Package cache keeps, on disk, the server responses a run needed to
// resolve its templates, exactly as the servers sent them, so that a later
// run can resolve while a server is down.
//
// Every provider is zero-knowledge: what it marks cacheable
// (fetch.Request.Cache) is ciphertext, wrapped keys and names, never a
// token, a decrypted value or a key that opens without the credentials
// injector is given. The cache therefore holds nothing a reader of the
// directory could not also get from the server's database. Its rules:
//
//   - One file per provider, "<provider>.cache", replaced atomically after
//     a successful run with exactly the responses that run used; mode 0600
//     in a directory of mode 0700, both owned by injector's user. A
//     directory or file owned by someone else or open to others is refused.
//   - A response is served only for an outage (fetch.Unavailable) and only
//     while younger than the maximum age; it keeps the time it was
//     received, so serving it never makes it younger.
//   - A file that does not verify (truncated, edited, not a cache file) is
//     ignored with a warning: it is never parsed into a response.
//
// See docs/cache.md for the threat model.
package cache

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/injector-dev/injector/internal/fetch"
)

// magic starts every cache file; the SHA-256 of the rest follows it on the
// first line, so a truncated or altered file is recognised before use.
const magic = "injector-cache v1 sha256:"

// maxFile bounds how much of a cache file is read: a PassAgent list is at
// most a few pages of 16 MiB (internal/fetch/passagent).
const maxFile = 256 << 20

// DefaultMaxAge is how old a cached response may be and still be served
// when --cache-max-age is not given.
const DefaultMaxAge = 24 * time.Hour

// Options are the hooks the command line gives the cache.
type Options struct {
	// MaxAge is how old a response may be and still be served
	// (DefaultMaxAge when zero).
	MaxAge time.Duration
	// Warn is told about a cache file that is refused or ignored, and
	// about a failed write; err never holds cache content.
	Warn func(msg string, err error)
	// Served is told, once per provider and run, that provider's
	// responses now come from the cache: age is that of the oldest
	// response served so far in the run, cause the outage.
	Served func(provider string, age time.Duration, cause error)
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// Dir is the cache in one directory. It is safe for concurrent use.
type Dir struct {
	path string
	opt  Options

	mu     sync.Mutex
	disk   map[string]map[string]entry // provider → key → entry, as loaded
	loaded map[string]bool             // provider file read (or found missing)
	run    map[string]map[string]entry // provider → responses this run used
	down   map[string]error            // provider → outage seen this run
	oldest map[string]time.Time        // provider → oldest response served this run
	refuse map[string]string           // provider → why nothing of this run is kept
}

// entry is one response as received.
type entry struct {
	At     time.Time `json:"at"`
	Status int       `json:"status"`
	Body   []byte    `json:"body"`
}

// payload is a cache file after its first line.
type payload struct {
	Provider string           `json:"provider"`
	Entries  map[string]entry `json:"entries"`
}

// Open prepares dir as the cache directory: it is created with mode 0700
// if missing, and refused if it is not a directory, is owned by another
// user or is open to group or others.
func Open(dir string, opt Options) (*Dir, error) {
	if opt.MaxAge <= 0 {
		opt.MaxAge = DefaultMaxAge
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.Warn == nil {
		opt.Warn = func(string, error) {}
	}
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return nil, fmt.Errorf("cache: %w", err)
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("cache: %s is not a directory", dir)
	}
	if err := private(fi, dir, 0o700); err != nil {
		return nil, fmt.Errorf("cache: %w (use a directory of injector's own, e.g. a subdirectory it creates)", err)
	}
	d := &Dir{path: dir, opt: opt, disk: map[string]map[string]entry{}, loaded: map[string]bool{}}
	d.Begin()
	return d, nil
}

// private refuses a file or directory that another user owns or that
// group or others may use at all.
func private(fi os.FileInfo, name string, want os.FileMode) error {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if ok && int(st.Uid) != os.Geteuid() {
		return fmt.Errorf("%s is owned by uid %d, not by injector's uid %d", name, st.Uid, os.Geteuid())
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return fmt.Errorf("%s has mode %04o, want %04o", name, perm, want)
	}
	return nil
}

// Begin starts a run: responses are collected afresh, and every provider
// is tried against its server again.
func (d *Dir) Begin() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.run = map[string]map[string]entry{}
	d.down = map[string]error{}
	d.oldest = map[string]time.Time{}
	d.refuse = map[string]string{}
}

// Save implements fetch.Cache.
func (d *Dir) Save(provider, key string, resp *fetch.Response) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.keep(provider, key, entry{At: d.opt.Now(), Status: resp.Status, Body: bytes.Clone(resp.Body)})
}

func (d *Dir) keep(provider, key string, e entry) {
	if _, refused := d.refuse[provider]; refused {
		return
	}
	if d.run[provider] == nil {
		d.run[provider] = map[string]entry{}
	}
	d.run[provider][key] = e
}

// Serve implements fetch.Cache.
func (d *Dir) Serve(provider, key string, cause error) (*fetch.Response, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.down[provider] == nil {
		d.down[provider] = cause
	}
	if key == "" {
		return nil, cause
	}
	if e, ok := d.run[provider][key]; ok { // the same request twice in a run
		return d.serve(provider, e), nil
	}
	e, ok := d.load(provider)[key]
	switch age := d.opt.Now().Sub(e.At); {
	case !ok:
		return nil, fmt.Errorf("%w (and the cache holds no response to this request)", cause)
	case age > d.opt.MaxAge:
		return nil, fmt.Errorf("%w (the cached response is %s old, past the cache's maximum age of %s)", cause, age.Round(time.Second), d.opt.MaxAge)
	}
	d.keep(provider, key, e)
	return d.serve(provider, e), nil
}

// serve hands out e and tells Served when it is the provider's first
// cached response in the run, or an older one than before.
func (d *Dir) serve(provider string, e entry) *fetch.Response {
	first, ok := d.oldest[provider]
	if !ok || e.At.Before(first) {
		d.oldest[provider] = e.At
		if !ok && d.opt.Served != nil {
			d.opt.Served(provider, d.opt.Now().Sub(e.At), d.down[provider])
		}
	}
	return &fetch.Response{Status: e.Status, Body: bytes.Clone(e.Body)}
}

// Down implements fetch.Cache.
func (d *Dir) Down(provider string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.down[provider]
}

// Usable implements fetch.Cache.
func (d *Dir) Usable(provider string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	entries := d.load(provider)
	if len(entries) == 0 {
		return errors.New("the cache holds no response to resolve from")
	}
	var newest time.Time
	for _, e := range entries {
		if e.At.After(newest) {
			newest = e.At
		}
	}
	if age := d.opt.Now().Sub(newest); age > d.opt.MaxAge {
		return fmt.Errorf("the cached responses are %s old, past the cache's maximum age of %s", age.Round(time.Second), d.opt.MaxAge)
	}
	return nil
}

// Refuse implements fetch.Cache.
func (d *Dir) Refuse(provider, reason string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, done := d.refuse[provider]; !done {
		d.opt.Warn("cache: not keeping "+provider+" responses", errors.New(reason))
	}
	d.refuse[provider] = reason
	delete(d.run, provider)
}

// Served returns, per provider that fell back to the cache in the current
// run, the age of the oldest response it served.
func (d *Dir) Served() map[string]time.Duration {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := map[string]time.Duration{}
	for p, at := range d.oldest {
		out[p] = d.opt.Now().Sub(at)
	}
	return out
}

// Commit ends a successful run: each provider's file is replaced with
// exactly the responses the run used (fresh or served from the cache),
// and the file of a provider the run did not use is removed. A failed run
// must not commit: the cache keeps what the last good run needed.
func (d *Dir) Commit() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	var errs []error
	for provider, entries := range d.run {
		if err := d.write(provider, entries); err != nil {
			errs = append(errs, err)
			d.opt.Warn("cache: not updated", err)
		}
	}
	names, _ := filepath.Glob(filepath.Join(d.path, "*.cache"))
	for _, name := range names {
		provider := strings.TrimSuffix(filepath.Base(name), ".cache")
		if _, used := d.run[provider]; !used {
			if err := os.Remove(name); err != nil && !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, fmt.Errorf("cache: %w", err))
			}
			delete(d.disk, provider)
		}
	}
	return errors.Join(errs...)
}

// file is the path of provider's cache file.
func (d *Dir) file(provider string) string {
	return filepath.Join(d.path, provider+".cache")
}

// load returns provider's entries on disk, reading the file once per
// process; a file that is refused or does not verify counts as empty.
func (d *Dir) load(provider string) map[string]entry {
	if d.loaded[provider] {
		return d.disk[provider]
	}
	d.loaded[provider] = true
	entries, err := read(d.file(provider), provider)
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			d.opt.Warn("cache: ignoring a cache file", err)
		}
		return nil
	}
	d.disk[provider] = entries
	return entries
}

// read opens a cache file without following a symbolic link, checks its
// owner and mode on the open descriptor, and verifies its checksum before
// decoding it.
func read(name, provider string) (map[string]entry, error) {
	f, err := os.OpenFile(name, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", name)
	}
	if err := private(fi, name, 0o600); err != nil {
		return nil, err
	}
	data, err := io.ReadAll(io.LimitReader(f, maxFile+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxFile {
		return nil, fmt.Errorf("%s is larger than %d MiB", name, maxFile>>20)
	}
	head, body, ok := bytes.Cut(data, []byte("\n"))
	sum, isCache := strings.CutPrefix(string(head), magic)
	if !ok || !isCache {
		return nil, fmt.Errorf("%s is not an injector cache file (or is truncated)", name)
	}
	got := sha256.Sum256(body)
	if sum != hex.EncodeToString(got[:]) {
		return nil, fmt.Errorf("%s does not match its checksum (truncated or altered)", name)
	}
	var p payload
	if err := json.Unmarshal(body, &p); err != nil || p.Provider != provider {
		return nil, fmt.Errorf("%s: not a cache of %s responses", name, provider)
	}
	return p.Entries, nil
}

// write replaces provider's file atomically: a temporary file of mode
// 0600 in the same directory, renamed over the old one. It is not synced:
// a file torn by a crash fails its checksum and is ignored, and the next
// good run writes it again; a sync per refresh cost 100 ms and more on a
// busy disk. A cache whose entries are those on disk (a run served
// entirely from it) is not rewritten.
func (d *Dir) write(provider string, entries map[string]entry) error {
	if d.loaded[provider] && sameEntries(entries, d.disk[provider]) {
		return nil
	}
	body, err := json.Marshal(payload{Provider: provider, Entries: entries})
	if err != nil {
		return fmt.Errorf("cache: %s: %w", provider, err)
	}
	sum := sha256.Sum256(body)
	data := append([]byte(magic+hex.EncodeToString(sum[:])+"\n"), body...)
	name := d.file(provider)
	tmp, err := os.CreateTemp(d.path, "."+provider+".cache.*")
	if err != nil {
		return fmt.Errorf("cache: %w", err)
	}
	defer os.Remove(tmp.Name()) // after a successful rename, a no-op
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("cache: %w", err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("cache: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("cache: %w", err)
	}
	if err := os.Rename(tmp.Name(), name); err != nil {
		return fmt.Errorf("cache: %w", err)
	}
	d.disk[provider], d.loaded[provider] = entries, true
	return nil
}

// sameEntries reports whether a and b hold the same responses, received
// at the same times.
func sameEntries(a, b map[string]entry) bool {
	if len(a) != len(b) {
		return false
	}
	for k, ea := range a {
		eb, ok := b[k]
		if !ok || !ea.At.Equal(eb.At) || ea.Status != eb.Status || !bytes.Equal(ea.Body, eb.Body) {
			return false
		}
	}
	return true
}

// Providers lists the providers that have a cache file, for messages.
func (d *Dir) Providers() []string {
	names, _ := filepath.Glob(filepath.Join(d.path, "*.cache"))
	var out []string
	for _, n := range names {
		out = append(out, strings.TrimSuffix(filepath.Base(n), ".cache"))
	}
	sort.Strings(out)
	return out
}
