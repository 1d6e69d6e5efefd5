package passwork

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"testing"

	pwcrypto "github.com/injector-dev/injector/internal/crypto/passwork"
	"github.com/injector-dev/injector/internal/fetch"
)

// memBackend serves vaults and entries from memory, stored with
// client-side encryption off, so Resolve's own work can be measured.
type memBackend struct {
	vaultIDs map[string][]string
	sums     []summary
	entries  map[string]*entry
}

// newMemBackend holds n entries "vaultV/apps/secretNNNNN" spread over
// three vaults, like the benchmarks, and returns refs to all of them.
func newMemBackend(n int) (*memBackend, []fetch.Ref) {
	b := &memBackend{vaultIDs: map[string][]string{}, entries: map[string]*entry{}}
	refs := make([]fetch.Ref, n)
	for i := range n {
		vault, id := fmt.Sprintf("vault%d", i%3), fmt.Sprintf("item%05d", i)
		b.vaultIDs[vault] = []string{"id-" + vault}
		name := fmt.Sprintf("secret%05d", i)
		b.sums = append(b.sums, summary{id: id, vaultID: "id-" + vault, name: name, folders: []string{"apps"}})
		b.entries[id] = &entry{id: id, vaultID: "id-" + vault, name: name, passwordEnc: base64.StdEncoding.EncodeToString([]byte("pw"))}
		refs[i] = fetch.Ref{Provider: "passwork", Path: vault + "/apps/" + name}
	}
	return b, refs
}

func (b *memBackend) auth(context.Context) error   { return nil }
func (b *memBackend) logout(context.Context) error { return nil }
func (b *memBackend) vaults(context.Context, bool) (map[string][]string, error) {
	return b.vaultIDs, nil
}
func (b *memBackend) list(context.Context, []string) ([]summary, error)      { return b.sums, nil }
func (b *memBackend) shortcuts(context.Context, []string) ([]summary, error) { return nil, nil }
func (b *memBackend) get(_ context.Context, ids []string) (map[string]*entry, map[string]error, error) {
	out := make(map[string]*entry, len(ids))
	for _, id := range ids {
		out[id] = b.entries[id]
	}
	return out, nil, nil
}
func (b *memBackend) itemKey(context.Context, *entry) (string, bool, error) { return "", true, nil }
func (b *memBackend) attachments(context.Context, []attRef) (map[attRef]*attachmentData, map[attRef]error, error) {
	return nil, nil, errors.New("no attachments")
}
func (b *memBackend) attachmentHash([]byte, string) string { return "" }

// TestResolveScalesLinearly catches a return to matching every ref against
// the whole search result (which allocated O(entries) per ref) by comparing
// the memory one Resolve allocates for n and 4n refs: linear work grows
// about 4×; the old per-ref scan grew 9.6× here. Allocation counts alone
// would not catch it (the scan's buffers grow in O(log n) steps).
func TestResolveScalesLinearly(t *testing.T) {
	const n = 500
	type cost struct{ allocs, bytes float64 }
	measure := func(n int) cost {
		b, refs := newMemBackend(n)
		c := &Client{backend: b}
		resolve := func() {
			res, err := c.Resolve(context.Background(), refs)
			if err != nil {
				t.Fatal(err)
			}
			for i, r := range res {
				if r.Err != nil || r.Value != "pw" {
					t.Fatalf("ref %d: got %q, %v", i, r.Value, r.Err)
				}
			}
		}
		allocs := testing.AllocsPerRun(3, resolve)
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		const runs = 3
		for range runs {
			resolve()
		}
		runtime.ReadMemStats(&after)
		return cost{allocs, float64(after.TotalAlloc-before.TotalAlloc) / runs}
	}
	small, large := measure(n), measure(4*n)
	t.Logf("%d refs: %.0f allocs, %.0f B; %d refs: %.0f allocs, %.0f B", n, small.allocs, small.bytes, 4*n, large.allocs, large.bytes)
	if r := large.allocs / small.allocs; r > 6 {
		t.Errorf("allocations grew %.1f× for 4× the refs, want about 4×", r)
	}
	if r := large.bytes / small.bytes; r > 6 {
		t.Errorf("allocated bytes grew %.1f× for 4× the refs, want about 4×", r)
	}
}

// TestIndexMatch covers the corners of path matching that the emulator
// cannot produce: a listed vault with no entries, entries at a vault's top
// level, folders that share names at different depths.
func TestIndexMatch(t *testing.T) {
	vaults := map[string][]string{"A": {"va"}, "Empty": {"ve"}, "B": {"vb1", "vb2"}}
	idx := newIndex(vaults, []summary{
		{id: "1", vaultID: "va", name: "top"},
		{id: "2", vaultID: "va", name: "x", folders: []string{"f"}},
		{id: "3", vaultID: "va", name: "y", folders: []string{"f", "f"}},
		{id: "4", vaultID: "vb1", name: "dup"},
		{id: "5", vaultID: "vb2", name: "dup"},
		{id: "6", vaultID: "va", name: "f"}, // an entry named like a folder
	})
	tests := []struct {
		path    string
		id      string
		err     string
		nearby  []string
		ambigID []string
	}{
		{path: "A/top", id: "1"},
		{path: "A/f", id: "6"},
		{path: "A/f/x", id: "2"},
		{path: "A/f/f/y", id: "3"},
		{path: "A/f/y", err: `entry "y" not found in folder "A/f"`, nearby: []string{"x"}},
		// A folder where an entry is asked for: what is in it.
		{path: "A/f/f", err: `entry "f" not found in folder "A/f": "A/f/f" is a folder, holding "A/f/f/y"`, nearby: []string{"A/f/f/y"}},
		{path: "A/g/x", err: `folder "g" not found in vault "A"`, nearby: []string{"f"}},
		{path: "A/f/g/x", err: `folder "g" not found in folder "A/f"`, nearby: []string{"f"}},
		{path: "A/nope", err: `entry "nope" not found in vault "A"`, nearby: []string{"f", "top"}},
		{path: "Empty/x", err: `entry "x" not found in vault "Empty"`, nearby: []string{}},
		{path: "Empty/f/x", err: `folder "f" not found in vault "Empty"`, nearby: []string{}},
		{path: "C/x", err: `vault "C" not found`, nearby: []string{"A", "B", "Empty"}},
		{path: "B/dup", ambigID: []string{"4", "5"}},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			id, err := idx.match(fetch.Ref{Provider: "passwork", Path: tt.path})
			var nf *fetch.NotFoundError
			var ae *fetch.AmbiguousError
			switch {
			case tt.id != "":
				if err != nil || id != tt.id {
					t.Errorf("got %q, %v; want %q", id, err, tt.id)
				}
			case tt.ambigID != nil:
				if !errors.As(err, &ae) || !slices.Equal(ae.Candidates, tt.ambigID) {
					t.Errorf("got %v, want ambiguity between %v", err, tt.ambigID)
				}
			case !errors.As(err, &nf):
				t.Errorf("got %q, %v; want %s", id, err, tt.err)
			default:
				want := tt.err
				if nf.Folder == "" {
					want += availableSuffix(tt.nearby)
				}
				if nf.Error() != want || !slices.Equal(nf.Nearby, tt.nearby) {
					t.Errorf("got %q (nearby %q), want %q (nearby %q)", nf, nf.Nearby, tt.err, tt.nearby)
				}
			}
		})
	}
}

func availableSuffix(nearby []string) string {
	if len(nearby) == 0 {
		return ""
	}
	return "; available: " + fetch.QuoteList(nearby, 10)
}

// open must not base64-decode ciphertext in an entry wrongly judged to have
// client-side encryption off: AESpw base32 text can be valid base64.
func TestOpenRefusesCiphertextAsPlain(t *testing.T) {
	ct, err := pwcrypto.Encrypt("CANARY-secret", "item-key")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		v       string
		plain   bool
		want    string
		wantErr error
	}{
		{"plain base64", base64.StdEncoding.EncodeToString([]byte("hello")), true, "hello", nil},
		{"empty", "", true, "", nil},
		{"ciphertext judged plain", ct, true, "", errEncryptedNoKey},
		{"ciphertext upper-case", strings.ToUpper(ct), true, "", errEncryptedNoKey},
		// The prefix alone is valid base64 and decodes "successfully".
		{"prefix only", aespwPrefix, true, "", errEncryptedNoKey},
		{"ciphertext with key", ct, false, "CANARY-secret", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Without a memo, and twice with one (the second answered
			// from it, or refused again).
			m := &memos{}
			for i, m := range []*memos{nil, m, m} {
				got, err := m.open(tt.v, "item-key", tt.plain)
				if got != tt.want || !errors.Is(err, tt.wantErr) {
					t.Errorf("open #%d = %q, %v; want %q, %v", i, got, err, tt.want, tt.wantErr)
				}
			}
		})
	}
}
