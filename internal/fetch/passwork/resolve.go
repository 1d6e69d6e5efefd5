package passwork

import (
	"context"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/injector-dev/injector/internal/crypto/totp"
	"github.com/injector-dev/injector/internal/fetch"
)

// Resolve resolves refs in one pass: one vault listing (cached), one entry
// listing across all vaults named, batched entry fetches and, if any
// attachments are referenced, batched attachment fetches.
func (c *Client) Resolve(ctx context.Context, refs []fetch.Ref) ([]fetch.Result, error) {
	results, _, err := c.ResolveList(ctx, refs, nil)
	return results, err
}

// ResolveList resolves refs and lists the selections sels in the same
// pass as Resolve: the vaults the selections name join the one entry
// listing, and their entries join the batched fetches, so a selection of
// N entries costs what N references by path cost. Listings are
// index-aligned with sels.
func (c *Client) ResolveList(ctx context.Context, refs []fetch.Ref, sels []fetch.Selector) ([]fetch.Result, []fetch.Listing, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	defer c.memo.endCall()
	results := make([]fetch.Result, len(refs))
	listings := make([]fetch.Listing, len(sels))
	if len(refs) == 0 && len(sels) == 0 {
		return results, listings, nil
	}
	if err := c.backend.auth(ctx); err != nil {
		return nil, nil, err
	}

	// 1. Map every ref to an entry id, every selection to its entries.
	ids := make([]string, len(refs))
	selected, err := c.locate(ctx, refs, ids, results, sels, listings)
	if err != nil {
		return nil, nil, err
	}

	// 2. Fetch the distinct entries.
	var want []string
	wanted := make(map[string]bool, len(refs))
	for i, id := range ids {
		if results[i].Err == nil && id != "" && !wanted[id] {
			wanted[id] = true
			want = append(want, id)
		}
	}
	for _, sums := range selected {
		for _, s := range sums {
			if !wanted[s.id] {
				wanted[s.id] = true
				want = append(want, s.id)
			}
		}
	}
	entries, getErrs, err := c.backend.get(ctx, want)
	if err != nil {
		return nil, nil, err
	}

	// 3. Pick fields; attachments are collected and fetched together.
	pending := map[int]attRef{}
	for i, ref := range refs {
		if results[i].Err != nil {
			continue
		}
		e := entries[ids[i]]
		if e == nil {
			if gerr := getErrs[ids[i]]; gerr != nil {
				results[i].Err = fmt.Errorf("passwork: resolve %s: %w", ref, gerr)
			} else {
				results[i].Err = fmt.Errorf("passwork: resolve %s: %w", ref, &fetch.NotFoundError{Kind: "entry", Name: ref.Path})
			}
			continue
		}
		v, att, err := c.field(ctx, ref, e)
		switch {
		case isBatchError(err):
			return nil, nil, err
		case err != nil:
			results[i].Err = fmt.Errorf("passwork: resolve %s: %w", ref, err)
		case att != nil:
			pending[i] = *att
		default:
			results[i].Value = v
		}
	}
	if len(pending) > 0 {
		if err := c.fetchAttachments(ctx, refs, entries, pending, results); err != nil {
			return nil, nil, err
		}
	}
	for i, sums := range selected {
		if listings[i].Err != nil {
			continue
		}
		listings[i].Entries, listings[i].Err = c.open(ctx, sels[i], sums, entries, getErrs)
		if isBatchError(listings[i].Err) {
			return nil, nil, listings[i].Err
		}
	}
	return results, listings, nil
}

// locate fills ids for every ref, or results[i].Err for refs that do not
// name exactly one entry, and returns the summaries of each selection's
// entries (or sets listings[i].Err). One search covers the vaults of refs
// and selections alike; it is indexed once, so each ref costs a walk down
// its own path, not a scan of every entry.
func (c *Client) locate(ctx context.Context, refs []fetch.Ref, ids []string, results []fetch.Result, sels []fetch.Selector, listings []fetch.Listing) ([][]picked, error) {
	var vaultNames []string // in first-seen order, so the search request is stable
	seen := map[string]bool{}
	addVault := func(n string) {
		if !seen[n] {
			seen[n] = true
			vaultNames = append(vaultNames, n)
		}
	}
	for i, ref := range refs {
		if id, ok := ref.ID(); ok {
			if id == "" {
				results[i].Err = fmt.Errorf("passwork: resolve %s: empty id", ref)
			}
			ids[i] = id
			continue
		}
		segs := ref.Segments()
		if len(segs) < 2 {
			results[i].Err = fmt.Errorf("passwork: resolve %s: path must be \"Vault/[Folder/…/]Name\" or \"id:<id>\"", ref)
			continue
		}
		addVault(segs[0])
	}
	allVaults := false // a tag selection searches every vault
	for _, sel := range sels {
		if sel.Tag != "" {
			allVaults = true
			continue
		}
		addVault(sel.Segments()[0])
	}
	if len(vaultNames) == 0 && !allVaults {
		return make([][]picked, len(sels)), nil
	}
	vaults, err := c.backend.vaults(ctx, false)
	if err != nil {
		return nil, err
	}
	for _, n := range vaultNames {
		if len(vaults[n]) == 0 { // maybe created since we cached the list
			if vaults, err = c.backend.vaults(ctx, true); err != nil {
				return nil, err
			}
			break
		}
	}
	var vaultIDs []string
	if allVaults {
		for _, n := range keys(vaults) {
			vaultIDs = append(vaultIDs, vaults[n]...)
		}
	} else {
		for _, n := range vaultNames {
			vaultIDs = append(vaultIDs, vaults[n]...)
		}
	}
	var sums []summary
	if len(vaultIDs) > 0 {
		if sums, err = c.backend.list(ctx, vaultIDs); err != nil {
			return nil, err
		}
	}
	idx := c.index(vaults, sums)
	var missed []int
	for i, ref := range refs {
		if _, ok := ref.ID(); ok || results[i].Err != nil {
			continue
		}
		ids[i], results[i].Err = idx.match(ref)
		var nf *fetch.NotFoundError
		if errors.As(results[i].Err, &nf) && nf.Kind != "vault" {
			missed = append(missed, i)
		}
	}
	selected := make([][]picked, len(sels))
	for i, sel := range sels {
		selected[i], listings[i].Err = idx.selectEntries(sel, sums)
	}
	if len(missed) == 0 {
		return selected, nil
	}
	// An entry shared into another vault or folder by a shortcut is
	// reachable by its path there. Shortcuts are listed only when a path
	// matches no entry, so resolving entries by their own paths costs no
	// extra request.
	var scVaults []string
	seenVault := map[string]bool{}
	for _, i := range missed {
		for _, id := range vaults[refs[i].Segments()[0]] {
			if !seenVault[id] {
				seenVault[id] = true
				scVaults = append(scVaults, id)
			}
		}
	}
	scs, err := c.backend.shortcuts(ctx, scVaults)
	if err != nil {
		return nil, err
	}
	idx = newIndex(vaults, append(sums, scs...))
	for _, i := range missed {
		ids[i], results[i].Err = idx.match(refs[i])
	}
	return selected, nil
}

// folder is one level of a vault: the entries directly in it and the
// folders below it. Only folders that (transitively) hold an entry exist,
// because the search result lists entries, not folders.
type folder struct {
	folders map[string]*folder
	entries map[string][]string // entry name → ids, in search order
}

func (f *folder) child(name string) *folder {
	if f.folders == nil {
		f.folders = map[string]*folder{}
	}
	c := f.folders[name]
	if c == nil {
		c = &folder{}
		f.folders[name] = c
	}
	return c
}

// index is one search result arranged by path.
type index struct {
	vaults map[string][]string // the vault listing: name → ids
	roots  map[string]*folder  // vault name → its top level; absent if it holds no entry
}

// index returns the index of sums under the vault listing vaults: the one
// built last time when both are what they were then. A search body
// received again unchanged gives back the same summaries (the body memo
// keeps them), so a warm refresh of unchanged data does not index 10,000
// entries again. An index is never modified once built.
func (c *Client) index(vaults map[string][]string, sums []summary) *index {
	last := &c.lastIndex
	if last.idx != nil && len(sums) > 0 && len(sums) == len(last.sums) && &sums[0] == &last.sums[0] &&
		maps.EqualFunc(vaults, last.vaults, slices.Equal[[]string]) {
		return last.idx
	}
	idx := newIndex(vaults, sums)
	last.sums, last.vaults, last.idx = sums, vaults, idx
	return idx
}

func newIndex(vaults map[string][]string, sums []summary) *index {
	vaultOf := map[string]string{} // id → name
	for n, vids := range vaults {
		for _, id := range vids {
			vaultOf[id] = n
		}
	}
	idx := &index{vaults: vaults, roots: map[string]*folder{}}
	for _, s := range sums {
		n := vaultOf[s.vaultID]
		f := idx.roots[n]
		if f == nil {
			f = &folder{}
			idx.roots[n] = f
		}
		for _, name := range s.folders {
			f = f.child(name)
		}
		if f.entries == nil {
			f.entries = map[string][]string{}
		}
		f.entries[s.name] = append(f.entries[s.name], s.id)
	}
	return idx
}

// match finds the single entry at ref's path or explains why not. The
// names listed as nearby are gathered only on a miss.
func (idx *index) match(ref fetch.Ref) (string, error) {
	segs := ref.Segments()
	vault, folders, name := segs[0], segs[1:len(segs)-1], segs[len(segs)-1]
	level := idx.roots[vault]
	if level == nil {
		if _, ok := idx.vaults[vault]; !ok {
			return "", fmt.Errorf("passwork: resolve %s: %w", ref, &fetch.NotFoundError{Kind: "vault", Name: vault, Nearby: keys(idx.vaults)})
		}
		level = &folder{} // a vault without entries
	}
	// Walk down the folders so the error names the first missing level.
	for d, f := range folders {
		next := level.folders[f]
		if next == nil {
			within := fmt.Sprintf("vault %q", vault)
			if d > 0 {
				within = fmt.Sprintf("folder %q", strings.Join(segs[:d+1], "/"))
			}
			return "", fmt.Errorf("passwork: resolve %s: %w", ref,
				&fetch.NotFoundError{Kind: "folder", Name: f, Within: within, Nearby: keys(level.folders)})
		}
		level = next
	}
	hits := level.entries[name]
	switch len(hits) {
	case 0:
		within := fmt.Sprintf("vault %q", vault)
		if len(folders) > 0 {
			within = fmt.Sprintf("folder %q", strings.Join(segs[:len(segs)-1], "/"))
		}
		nf := &fetch.NotFoundError{Kind: "entry", Name: name, Within: within, Nearby: keys(level.entries)}
		if sub := level.folders[name]; sub != nil {
			// A folder's path: say what is in it, as paths to copy.
			nf.Folder = strings.Join(segs, "/")
			nf.Nearby = nil
			for _, e := range keys(sub.entries) {
				nf.Nearby = append(nf.Nearby, nf.Folder+"/"+e)
			}
			for _, f := range keys(sub.folders) {
				nf.Nearby = append(nf.Nearby, nf.Folder+"/"+f+"/")
			}
		}
		return "", fmt.Errorf("passwork: resolve %s: %w", ref, nf)
	case 1:
		return hits[0], nil
	}
	return "", fmt.Errorf("passwork: resolve %s: %w", ref, &fetch.AmbiguousError{Kind: "entry", Name: ref.Path, Candidates: slices.Clone(hits)})
}

// field returns the value of ref.Field in e, or the attachment to fetch.
func (c *Client) field(ctx context.Context, ref fetch.Ref, e *entry) (string, *attRef, error) {
	switch ref.Field {
	case "name":
		return e.name, nil, nil
	case "login":
		return e.login, nil, nil
	case "url":
		return e.url, nil, nil
	case "urls":
		if len(e.urls) == 0 && e.url != "" {
			return e.url, nil, nil
		}
		return strings.Join(e.urls, ","), nil, nil
	case "description":
		return e.description, nil, nil
	case "tags":
		return strings.Join(e.tags, ","), nil, nil
	}
	if file, ok := strings.CutPrefix(ref.Field, "attachment:"); ok {
		for _, a := range e.attachments {
			if a.name == file {
				return "", &a, nil
			}
		}
		return "", nil, &fetch.NotFoundError{Kind: "attachment", Name: file, Within: fmt.Sprintf("entry %q", ref.Path), Nearby: attachmentNames(e)}
	}

	key, plain, err := c.itemKey(ctx, e)
	if err != nil {
		return "", nil, err
	}
	if ref.Field == "" || ref.Field == "password" {
		v, err := c.memo.open(e.passwordEnc, key, plain)
		if err != nil {
			return "", nil, fmt.Errorf("decrypt password: %w", err)
		}
		return v, nil, nil
	}
	customs, err := openCustoms(c.memo, e, key, plain)
	if err != nil {
		return "", nil, err
	}
	if ref.Field == "totp" {
		if cf := findCustom(customs, func(c encCustom) bool { return c.Type == "totp" }); len(cf) > 0 {
			code, err := totp.Generate(cf[0].Value, c.now())
			if err != nil {
				return "", nil, fmt.Errorf("totp field %q: %w", cf[0].Name, err)
			}
			return code, nil, nil
		}
	}
	if cf := findCustom(customs, func(c encCustom) bool { return c.Name == ref.Field }); len(cf) > 0 {
		return cf[0].Value, nil, nil
	}
	cf := findCustom(customs, func(c encCustom) bool { return strings.EqualFold(c.Name, ref.Field) })
	switch {
	case len(cf) == 1:
		return cf[0].Value, nil, nil
	case len(cf) > 1:
		var names []string
		for _, c := range cf {
			names = append(names, c.Name)
		}
		return "", nil, &fetch.AmbiguousError{Kind: "field", Name: ref.Field, Candidates: names}
	}
	nearby := []string{"password", "login", "url", "urls", "name", "description", "tags"}
	for _, c := range customs {
		nearby = append(nearby, c.Name)
		if c.Type == "totp" {
			nearby = append(nearby, "totp")
		}
	}
	for _, a := range attachmentNames(e) {
		nearby = append(nearby, "attachment:"+a)
	}
	return "", nil, &fetch.NotFoundError{Kind: "field", Name: ref.Field, Within: fmt.Sprintf("entry %q", ref.Path), Nearby: nearby}
}

// openCustoms decrypts the custom fields; name and type are encrypted too.
func openCustoms(m *memos, e *entry, key string, plain bool) ([]encCustom, error) {
	out := make([]encCustom, 0, len(e.customs))
	for i, c := range e.customs {
		var d encCustom
		var err error
		if d.Name, err = m.open(c.Name, key, plain); err == nil {
			if d.Type, err = m.open(c.Type, key, plain); err == nil {
				d.Value, err = m.open(c.Value, key, plain)
			}
		}
		if err != nil {
			return nil, fmt.Errorf("decrypt custom field #%d: %w", i+1, err)
		}
		out = append(out, d)
	}
	return out, nil
}

func findCustom(cs []encCustom, ok func(encCustom) bool) []encCustom {
	var out []encCustom
	for _, c := range cs {
		if ok(c) {
			out = append(out, c)
		}
	}
	return out
}

// fetchAttachments fetches, decrypts and verifies the pending attachments.
func (c *Client) fetchAttachments(ctx context.Context, refs []fetch.Ref, entries map[string]*entry, pending map[int]attRef, results []fetch.Result) error {
	var reqs []attRef
	seen := map[attRef]bool{}
	for _, a := range pending {
		if !seen[a] {
			seen[a] = true
			reqs = append(reqs, a)
		}
	}
	atts, errs, err := c.backend.attachments(ctx, reqs)
	if err != nil {
		return err
	}
	for i, a := range pending {
		data, err := c.openAttachment(ctx, entries[a.key], atts[a], errs[a])
		if isBatchError(err) {
			return err
		}
		if err != nil {
			results[i].Err = fmt.Errorf("passwork: resolve %s: attachment %q: %w", refs[i], a.name, err)
			continue
		}
		results[i].Value = string(data)
	}
	return nil
}

func (c *Client) openAttachment(ctx context.Context, e *entry, att *attachmentData, fetchErr error) ([]byte, error) {
	if fetchErr != nil {
		return nil, fetchErr
	}
	if att == nil {
		return nil, errors.New("not returned by the server")
	}
	key, plain, err := c.itemKey(ctx, e)
	if err != nil {
		return nil, err
	}
	attKey, err := c.memo.open(att.EncryptedKey, key, plain)
	if err != nil {
		return nil, fmt.Errorf("decrypt key: %w", err)
	}
	b64, err := c.memo.open(att.EncryptedData, attKey, plain)
	if err != nil {
		return nil, fmt.Errorf("decrypt data: %w", err)
	}
	data, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, errors.New("decrypted data is not base64")
	}
	if att.Hash != "" {
		got := c.backend.attachmentHash(data, att.Hash)
		if subtle.ConstantTimeCompare([]byte(got), []byte(strings.ToLower(att.Hash))) != 1 {
			return nil, errors.New("integrity check failed: content does not match the stored hash")
		}
	}
	return data, nil
}

func attachmentNames(e *entry) []string {
	var out []string
	for _, a := range e.attachments {
		out = append(out, a.name)
	}
	return out
}

// keys returns m's keys sorted.
func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
