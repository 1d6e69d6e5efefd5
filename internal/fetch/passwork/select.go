package passwork

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/injector-dev/injector/internal/fetch"
)

// selectEntries returns the summaries of the entries sel names, from the
// one search Resolve made, or why it names nothing that exists. Entries
// reached only by shortcut are not selected: a selection lists what the
// folder holds itself.
func (idx *index) selectEntries(sel fetch.Selector, sums []summary) ([]picked, error) {
	if sel.Tag == "" {
		if err := idx.folderExists(sel); err != nil {
			return nil, err
		}
	}
	vaultOf := map[string]string{} // id → name
	for n, vids := range idx.vaults {
		for _, id := range vids {
			vaultOf[id] = n
		}
	}
	var out []picked
	for _, s := range sums {
		vault, ok := vaultOf[s.vaultID]
		if !ok {
			continue
		}
		dir := strings.Join(append([]string{vault}, s.folders...), "/")
		if sel.Tag != "" && sel.Tagged(s.tags) || sel.Tag == "" && sel.Contains(dir) {
			out = append(out, picked{s, dir + "/" + s.name})
		}
	}
	return out, nil
}

// picked is an entry a selection names, with its path.
type picked struct {
	summary
	path string
}

// folderExists explains a folder selection whose vault or folders do not
// exist, naming what does, as match does for a reference.
func (idx *index) folderExists(sel fetch.Selector) error {
	segs := sel.Segments()
	vault := segs[0]
	if _, ok := idx.vaults[vault]; !ok {
		return fmt.Errorf("passwork: select %q: %w", sel.String(), &fetch.NotFoundError{Kind: "vault", Name: vault, Nearby: keys(idx.vaults)})
	}
	level := idx.roots[vault]
	if level == nil {
		level = &folder{} // a vault without entries
	}
	for d, f := range segs[1:] {
		next := level.folders[f]
		if next == nil {
			within := fmt.Sprintf("vault %q", vault)
			if d > 0 {
				within = fmt.Sprintf("folder %q", strings.Join(segs[:d+1], "/"))
			}
			if len(level.entries[f]) > 0 {
				return fmt.Errorf("passwork: select %q: %q is an entry, not a folder: a selection names a folder (FOLDER, FOLDER/**) or a tag (tag:NAME)", sel.String(), strings.Join(segs[:d+2], "/"))
			}
			return fmt.Errorf("passwork: select %q: %w", sel.String(),
				&fetch.NotFoundError{Kind: "folder", Name: f, Within: within, Nearby: keys(level.folders)})
		}
		level = next
	}
	return nil
}

// open decrypts the entries of one selection: the password, login, url
// and description, and every custom field except TOTP secrets (a code
// changes every 30 seconds: a template asks for it with "totp").
func (c *Client) open(ctx context.Context, sel fetch.Selector, sums []picked, entries map[string]*entry, getErrs map[string]error) ([]fetch.Entry, error) {
	out := make([]fetch.Entry, 0, len(sums))
	for _, s := range sums {
		e := entries[s.id]
		if e == nil {
			if err := getErrs[s.id]; err != nil {
				return nil, fmt.Errorf("passwork: select %q: entry %q: %w", sel.String(), s.name, err)
			}
			continue // deleted between the search and the fetch
		}
		path := s.path
		fe := fetch.Entry{ID: s.id, Name: s.name, Path: path}
		key, plain, err := c.itemKey(ctx, e)
		if err != nil {
			return nil, fmt.Errorf("passwork: select %q: entry %q: %w", sel.String(), path, err)
		}
		pw, err := c.memo.open(e.passwordEnc, key, plain)
		if err != nil {
			return nil, fmt.Errorf("passwork: select %q: entry %q: decrypt password: %w", sel.String(), path, err)
		}
		fe.Fields = append(fe.Fields,
			fetch.Field{Name: "password", Value: pw},
			fetch.Field{Name: "login", Value: e.login},
			fetch.Field{Name: "url", Value: e.url},
			fetch.Field{Name: "description", Value: e.description},
		)
		customs, err := openCustoms(c.memo, e, key, plain)
		if err != nil {
			return nil, fmt.Errorf("passwork: select %q: entry %q: %w", sel.String(), path, err)
		}
		for _, cf := range customs {
			if cf.Type != "totp" {
				fe.Fields = append(fe.Fields, fetch.Field{Name: cf.Name, Value: cf.Value, Custom: true})
			}
		}
		out = append(out, fe)
	}
	slices.SortStableFunc(out, func(a, b fetch.Entry) int {
		return strings.Compare(a.Path, b.Path)
	})
	return out, nil
}
