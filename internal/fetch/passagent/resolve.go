package passagent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/injector-dev/injector/internal/crypto/envelope"
	"github.com/injector-dev/injector/internal/crypto/totp"
	"github.com/injector-dev/injector/internal/fetch"
)

// Resolve resolves a batch of references with one pass over the entry list
// (one list call per page, whatever the number of references) and local
// decryption. Each referenced entry is decrypted once per call.
func (c *Client) Resolve(ctx context.Context, refs []fetch.Ref) ([]fetch.Result, error) {
	results, _, err := c.ResolveList(ctx, refs, nil)
	return results, err
}

// ResolveList is Resolve that also lists selections from the same pass
// over the entry list. PassAgent has no folders: a selection is a tag
// (tag:NAME). Listings are index-aligned with sels.
func (c *Client) ResolveList(ctx context.Context, refs []fetch.Ref, sels []fetch.Selector) ([]fetch.Result, []fetch.Listing, error) {
	results := make([]fetch.Result, len(refs))
	listings := make([]fetch.Listing, len(sels))
	if len(refs) == 0 && len(sels) == 0 {
		return results, listings, nil
	}
	key, err := c.key(ctx)
	if err != nil {
		return nil, nil, err
	}
	defer c.bodies.EndCall()
	defer c.opened.endCall()
	memo := c.opened.under(key)
	records, err := c.list(ctx)
	if err != nil {
		return nil, nil, err
	}
	idx := newIndex(records)

	// Each entry is decrypted once, whether referenced, selected or both;
	// tried and wrongKey count the V3 entries, to tell a wrong key.
	done := make(map[string]*opened, min(len(refs), len(idx.byID))) // by record id
	var tried, wrongKey int
	openOnce := func(r *record) *opened {
		o, ok := done[r.ID]
		if !ok {
			o = open(key, r, memo)
			done[r.ID] = o
			if r.EncryptionVersion == 3 {
				tried++
				if errors.Is(o.err, ErrWrongKey) {
					wrongKey++
				}
			}
		}
		return o
	}
	for i, ref := range refs {
		r, err := idx.find(ref)
		if err != nil {
			results[i].Err = fmt.Errorf("passagent: resolve %s: %w", ref, err)
			continue
		}
		o := openOnce(r)
		if o.err != nil {
			results[i].Err = fmt.Errorf("passagent: resolve %s: %w", ref, o.err)
			continue
		}
		v, err := o.field(ref.Field, c.now)
		if err != nil {
			results[i].Err = fmt.Errorf("passagent: resolve %s: %w", ref, err)
			continue
		}
		results[i].Value = v
	}
	for i, sel := range sels {
		if sel.Tag == "" {
			listings[i].Err = fmt.Errorf("passagent: select %q: PassAgent has no folders; select entries by tag (tag:NAME)", sel.String())
			continue
		}
		for _, r := range idx.tagged(sel) {
			o := openOnce(r)
			if o.err != nil {
				listings[i] = fetch.Listing{Err: fmt.Errorf("passagent: select %q: entry %q: %w", sel.String(), r.Name, o.err)}
				break
			}
			listings[i].Entries = append(listings[i].Entries, o.entry())
		}
	}
	// One entry failing to unwrap is a damaged entry; all of them failing
	// is a wrong key, which is a failure of the whole batch.
	if tried > 0 && wrongKey == tried {
		c.forgetKey(key)
		return nil, nil, fmt.Errorf("passagent: %w: the item keys of %s failed authentication", ErrWrongKey, fetch.Count(wrongKey, "entry", "entries"))
	}
	return results, listings, nil
}

// tagged returns the live records a tag selection names, by name then id.
func (x *index) tagged(sel fetch.Selector) []*record {
	var out []*record
	for _, r := range x.byID {
		if sel.Tagged(tags(r.Tags)) {
			out = append(out, r)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		return out[i].ID < out[j].ID
	})
	return out
}

// entry is the decrypted entry as a selection lists it: the password,
// username, notes, website and url, and the custom fields (a TOTP secret
// is not listed: its code is what a template asks for, with "totp").
func (o *opened) entry() fetch.Entry {
	e := fetch.Entry{ID: o.rec.ID, Name: o.rec.Name, Path: o.rec.Name, Fields: []fetch.Field{
		{Name: "password", Value: o.p.Password},
		{Name: "username", Value: o.p.Username},
		{Name: "notes", Value: firstNonEmpty(o.p.Notes, o.p.Note)},
		{Name: "website", Value: o.rec.Website},
		{Name: "url", Value: o.rec.URL},
	}}
	for _, f := range o.p.CustomFields {
		if v, err := customValue(f.Value); err == nil {
			e.Fields = append(e.Fields, fetch.Field{Name: f.Name, Value: v, Custom: true})
		}
	}
	return e
}

// index finds live records by name and by id.
type index struct {
	byName map[string][]*record
	byID   map[string]*record
	names  []string // distinct names, for "did you mean"
}

func newIndex(records []record) *index {
	x := &index{byName: make(map[string][]*record, len(records)), byID: make(map[string]*record, len(records))}
	for i := range records {
		r := &records[i]
		if r.deleted() {
			continue
		}
		x.byID[r.ID] = r
		if len(x.byName[r.Name]) == 0 {
			x.names = append(x.names, r.Name)
		}
		x.byName[r.Name] = append(x.byName[r.Name], r)
	}
	return x
}

func (x *index) find(ref fetch.Ref) (*record, error) {
	if id, ok := ref.ID(); ok {
		if r := x.byID[id]; r != nil {
			return r, nil
		}
		return nil, &fetch.NotFoundError{Kind: "entry", Name: ref.Path}
	}
	// PassAgent has no folders: the whole path is the entry name.
	name := ref.Path
	switch rs := x.byName[name]; len(rs) {
	case 0:
		return nil, &fetch.NotFoundError{Kind: "entry", Name: name, Nearby: closest(name, x.names, 10)}
	case 1:
		return rs[0], nil
	default:
		ids := make([]string, len(rs))
		for i, r := range rs {
			ids[i] = r.ID
		}
		return nil, &fetch.AmbiguousError{Kind: "entry", Name: name, Candidates: ids}
	}
}

// payload is the decrypted JSON of a V3 entry. Unknown keys are ignored,
// missing ones are empty; the aliases cover spellings other clients use.
type payload struct {
	Username     string        `json:"username"`
	Password     string        `json:"password"`
	Notes        string        `json:"notes"`
	Note         string        `json:"note"`
	TOTP         string        `json:"totp"`
	TOTPSecret   string        `json:"totp_secret"`
	TOTPSecret2  string        `json:"totpSecret"`
	CustomFields []customField `json:"custom_fields"`
}

type customField struct {
	Name  string          `json:"name"`
	Value json.RawMessage `json:"value"`
}

// opened is a decrypted entry, or why it could not be decrypted.
type opened struct {
	rec *record
	p   payload
	err error
}

// open opens r's envelope with the vault key and decodes its payload, or
// takes the payload from memo when r's ciphertext was opened before.
func open(key []byte, r *record, memo *fetch.Memo[sealed, payload]) *opened {
	o := &opened{rec: r}
	s := sealed{r.WrappedItemKey, r.EncryptedData}
	if r.EncryptionVersion == 3 {
		if p, ok := memo.Get(s); ok {
			o.p = p
			return o
		}
	}
	switch {
	case r.EncryptionVersion < 3:
		o.err = fmt.Errorf("%w: entry %q (id %s) uses encryption_version %d, which injector does not read; re-save it in PassAgent to upgrade it to V3",
			ErrLegacy, r.Name, r.ID, r.EncryptionVersion)
		return o
	case r.EncryptionVersion > 3:
		o.err = fmt.Errorf("entry %q (id %s) uses encryption_version %d; this injector reads version 3 only", r.Name, r.ID, r.EncryptionVersion)
		return o
	}
	itemKey, err := envelope.UnwrapItemKey(key, r.WrappedItemKey)
	if errors.Is(err, envelope.ErrAuth) {
		o.err = fmt.Errorf("entry %q (id %s): cannot unwrap its item key: %w (or the entry was altered)", r.Name, r.ID, ErrWrongKey)
		return o
	}
	if err != nil {
		o.err = fmt.Errorf("entry %q (id %s): %w", r.Name, r.ID, err)
		return o
	}
	pt, err := envelope.Decrypt(itemKey, r.EncryptedData)
	if errors.Is(err, envelope.ErrAuth) {
		o.err = fmt.Errorf("entry %q (id %s): encrypted_data failed authentication: the entry is corrupted or was tampered with", r.Name, r.ID)
		return o
	}
	if err != nil {
		o.err = fmt.Errorf("entry %q (id %s): %w", r.Name, r.ID, err)
		return o
	}
	// The JSON error would quote plaintext bytes: report the fact only.
	if fetch.UnmarshalJSON(pt, &o.p) != nil {
		o.err = fmt.Errorf("entry %q (id %s): decrypted payload is not the expected JSON object", r.Name, r.ID)
		return o
	}
	memo.Put(s, o.p)
	return o
}

// field returns one field. Standard field names (case-insensitive) take
// precedence over custom fields of the same name; custom fields match
// exactly, then case-insensitively.
func (o *opened) field(name string, now func() time.Time) (string, error) {
	switch strings.ToLower(name) {
	case "username", "login":
		return o.p.Username, nil
	case "password":
		return o.p.Password, nil
	case "notes", "note":
		return firstNonEmpty(o.p.Notes, o.p.Note), nil
	case "totp":
		secret := firstNonEmpty(o.p.TOTP, o.p.TOTPSecret, o.p.TOTPSecret2)
		if secret == "" {
			return "", &fetch.NotFoundError{Kind: "field", Name: name, Within: o.within(), Nearby: o.fieldNames()}
		}
		code, err := totp.Generate(secret, now())
		if err != nil {
			return "", fmt.Errorf("totp of %s: %w", o.within(), err)
		}
		return code, nil
	case "name":
		return o.rec.Name, nil
	case "website":
		return o.rec.Website, nil
	case "url":
		return o.rec.URL, nil
	case "tags":
		return strings.Join(tags(o.rec.Tags), ","), nil
	}
	var hits []customField
	for _, f := range o.p.CustomFields {
		if f.Name == name {
			hits = append(hits, f)
		}
	}
	if len(hits) == 0 { // fall back to a case-insensitive match
		for _, f := range o.p.CustomFields {
			if strings.EqualFold(f.Name, name) {
				hits = append(hits, f)
			}
		}
	}
	switch len(hits) {
	case 0:
		return "", &fetch.NotFoundError{Kind: "field", Name: name, Within: o.within(), Nearby: o.fieldNames()}
	case 1:
		return customValue(hits[0].Value)
	default:
		names := make([]string, len(hits))
		for i, h := range hits {
			names[i] = h.Name
		}
		return "", &fetch.AmbiguousError{Kind: "custom field", Name: name, Candidates: names}
	}
}

func (o *opened) within() string { return fmt.Sprintf("entry %q", o.rec.Name) }

// fieldNames lists the fields this entry has, for "not found" messages.
func (o *opened) fieldNames() []string {
	names := []string{"username", "password", "notes", "name", "website", "url", "tags"}
	if firstNonEmpty(o.p.TOTP, o.p.TOTPSecret, o.p.TOTPSecret2) != "" {
		names = append(names, "totp")
	}
	for _, f := range o.p.CustomFields {
		names = append(names, f.Name)
	}
	return names
}

// customValue renders a custom field value: a string as is, a number or
// boolean as its JSON text, null as "".
func customValue(raw json.RawMessage) (string, error) {
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s, nil
	}
	t := strings.TrimSpace(string(raw))
	switch {
	case t == "" || t == "null":
		return "", nil
	case t == "true" || t == "false" || json.Valid(raw) && (t[0] == '-' || (t[0] >= '0' && t[0] <= '9')):
		return t, nil
	}
	return "", errors.New("custom field value is not a string, number or boolean")
}

// tags reads the plaintext tags column: a JSON array of strings or one
// comma-separated string.
func tags(raw json.RawMessage) []string {
	var list []string
	if json.Unmarshal(raw, &list) == nil {
		return list
	}
	var s string
	if json.Unmarshal(raw, &s) == nil && s != "" {
		return strings.Split(s, ",")
	}
	return nil
}

// closest returns up to max names nearest to name by edit distance
// (case-insensitive), among those close enough to be a plausible typo. In a
// small vault every name is shown.
func closest(name string, names []string, n int) []string {
	if len(names) <= n {
		return names
	}
	type cand struct {
		name string
		d    int
	}
	limit := max(3, len([]rune(name))/3)
	var cs []cand
	for _, n := range names {
		d := fetch.EditDistance(strings.ToLower(name), strings.ToLower(n))
		if d <= limit || strings.Contains(strings.ToLower(n), strings.ToLower(name)) {
			cs = append(cs, cand{n, d})
		}
	}
	sort.SliceStable(cs, func(i, j int) bool { return cs[i].d < cs[j].d })
	var out []string
	for i := 0; i < len(cs) && i < n; i++ {
		out = append(out, cs[i].name)
	}
	return out
}
