package passbolt

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/injector-dev/injector/internal/crypto/pgp"
	"github.com/injector-dev/injector/internal/fetch"
)

// apiFolder is a row of GET /folders.json: v4 has a cleartext name, v5
// encrypted metadata instead.
type apiFolder struct {
	ID              string  `json:"id"`
	Name            string  `json:"name"`
	FolderParentID  *string `json:"folder_parent_id"`
	Metadata        armored `json:"metadata"`
	MetadataKeyID   string  `json:"metadata_key_id"`
	MetadataKeyType string  `json:"metadata_key_type"`
}

// apiResource is a row of GET /resources.json or GET /resources/{id}.json.
type apiResource struct {
	ID              string  `json:"id"`
	ResourceTypeID  string  `json:"resource_type_id"`
	FolderParentID  *string `json:"folder_parent_id"`
	Name            string  `json:"name"`
	Username        string  `json:"username"`
	URI             string  `json:"uri"`
	Description     string  `json:"description"`
	Metadata        armored `json:"metadata"`
	MetadataKeyID   string  `json:"metadata_key_id"`
	MetadataKeyType string  `json:"metadata_key_type"`
}

// resourceMetadata is decrypted v5 resource metadata.
type resourceMetadata struct {
	ResourceTypeID string        `json:"resource_type_id"`
	Name           string        `json:"name"`
	Username       string        `json:"username"`
	URIs           []string      `json:"uris"`
	Description    string        `json:"description"`
	CustomFields   []customLabel `json:"custom_fields"`
}

// resource is a resource with its cleartext or decrypted metadata.
type resource struct {
	id, typeID  string
	name        string
	username    string
	uris        []string
	description string
	custom      []customLabel
	meta        plainRef // the decrypted v5 metadata (zero for v4)

	// pending is the row of a v5 resource found by id whose metadata is
	// not decrypted yet: a reference to its password, TOTP or PIN code
	// needs only the secret (needMetadata).
	pending *apiResource
	metaErr error // why its metadata could not be read
}

// folder is a node of the in-memory folder tree. A v5 folder's name is
// in its encrypted metadata, decrypted only when a path goes through its
// parent (run.children).
type folder struct {
	id, parent, name string
	meta             *apiFolder // v5: the row whose metadata holds the name
}

// run holds what one Resolve call fetched; listings are never reused
// across calls so that a daemon sees changes.
type run struct {
	c         *Client
	folders   map[string][]folder // children by parent id ("" = root), names not decrypted yet
	named     map[string][]folder // children by parent id, with their names (run.children)
	walks     map[string]walked   // folder paths already walked, by path
	listings  map[string]*listing // by parent id ("" = root)
	byIDs     map[string]idLookup // resources fetched by "id:" in this run
	keysRead  bool                // /metadata/keys.json already fetched in this run
	typesRead bool
}

type listing struct {
	rows      []*resource
	undecrypt int // v5 rows whose metadata could not be decrypted
	byName    map[string][]*resource
}

// index builds the index by name: every reference into a folder is then a
// map lookup, not a scan of the folder (which made resolving n secrets of
// one folder O(n²)). A listing is read-only once indexed (a warm refresh
// of the same body shares it).
func (l *listing) index() {
	l.byName = make(map[string][]*resource, len(l.rows))
	for _, r := range l.rows {
		l.byName[r.name] = append(l.byName[r.name], r)
	}
}

// named returns the rows with that name.
func (l *listing) named(name string) []*resource { return l.byName[name] }

// Resolve resolves a batch of references. Per-reference problems are in
// the results; the error is for whole-batch failures (login, transport).
func (c *Client) Resolve(ctx context.Context, refs []fetch.Ref) ([]fetch.Result, error) {
	results, _, err := c.ResolveList(ctx, refs, nil)
	return results, err
}

// ResolveList is Resolve that also lists folder selections, from the same
// folder listings (a folder both named by references and selected is
// listed once) and with their secrets in the same batched requests.
// Listings are index-aligned with sels.
func (c *Client) ResolveList(ctx context.Context, refs []fetch.Ref, sels []fetch.Selector) ([]fetch.Result, []fetch.Listing, error) {
	results := make([]fetch.Result, len(refs))
	listings := make([]fetch.Listing, len(sels))
	rn := &run{c: c, listings: map[string]*listing{}, byIDs: map[string]idLookup{}}
	defer c.plain.endCall()

	// 1. Find every referenced resource (listings are shared within the run).
	if err := rn.prefetchIDs(ctx, refs); err != nil {
		return nil, nil, err
	}
	found := make([]*resource, len(refs))
	for i, ref := range refs {
		res, err := rn.locate(ctx, ref)
		if err == nil && !secretOnly(ref.Field) {
			err = rn.needMetadata(ctx, res)
		}
		if err != nil {
			if isBatchError(err) {
				return nil, nil, err
			}
			results[i].Err = fmt.Errorf("passbolt: resolve %s: %w", ref, err)
			continue
		}
		found[i] = res
	}
	selected := make([][]pickedResource, len(sels))
	for i, sel := range sels {
		var err error
		if selected[i], err = rn.selectResources(ctx, sel); err != nil {
			if isBatchError(err) {
				return nil, nil, err
			}
			listings[i].Err = fmt.Errorf("passbolt: select %q: %w", sel.String(), err)
		}
	}

	// 2. Fetch each needed secret once.
	secrets := map[string]*secretResult{}
	for i, res := range found {
		if res != nil && needsSecret(refs[i].Field, res) {
			secrets[res.id] = nil
		}
	}
	for _, picked := range selected {
		for _, p := range picked {
			secrets[p.res.id] = nil
		}
	}
	if err := rn.fetchSecrets(ctx, secrets); err != nil {
		return nil, nil, err
	}

	// 3. Pick the fields.
	for i, res := range found {
		if res == nil {
			continue
		}
		typ, err := rn.resourceType(ctx, res.typeID)
		if err == nil && !typeHas(typ, refs[i].Field) {
			err = rn.needMetadata(ctx, res) // a custom field: its label is in the metadata
		}
		if err != nil {
			if isBatchError(err) {
				return nil, nil, err
			}
			results[i].Err = fmt.Errorf("passbolt: resolve %s: %w", refs[i], err)
			continue
		}
		v, err := extract(res, typ, secrets[res.id], refs[i].Field, refs[i].Path, c.now())
		if err != nil {
			results[i].Err = fmt.Errorf("passbolt: resolve %s: %w", refs[i], err)
			continue
		}
		results[i].Value = v
	}
	for i, picked := range selected {
		for _, p := range picked {
			if listings[i].Err != nil {
				break
			}
			typ, err := rn.resourceType(ctx, p.res.typeID)
			if err != nil && isBatchError(err) {
				return nil, nil, err
			}
			var e fetch.Entry
			if err == nil {
				e, err = entryOf(p.res, typ, secrets[p.res.id], p.path, c.now())
			}
			if err != nil {
				listings[i] = fetch.Listing{Err: fmt.Errorf("passbolt: select %q: resource %q: %w", sels[i].String(), p.path, err)}
				break
			}
			listings[i].Entries = append(listings[i].Entries, e)
		}
	}
	return results, listings, nil
}

// pickedResource is a resource a selection names, with its path.
type pickedResource struct {
	res  *resource
	path string
}

// selectResources lists the resources of a folder selection: those in the
// folder, and with "/**" those in every folder below it, one listing per
// folder (shared with the references' lookups). Passbolt CE has no tags
// in its API, so a tag selection is an error saying so.
func (rn *run) selectResources(ctx context.Context, sel fetch.Selector) ([]pickedResource, error) {
	if sel.Tag != "" {
		return nil, refError{errors.New("Passbolt's API has no tags (they are a Pro feature the API does not filter on); select a folder (FOLDER or FOLDER/**)")}
	}
	segs := sel.Segments()
	id, err := rn.walk(ctx, segs)
	if err != nil {
		return nil, err
	}
	var out []pickedResource
	var visit func(id, path string) error
	visit = func(id, path string) error {
		l, err := rn.listing(ctx, id)
		if err != nil {
			return err
		}
		for _, r := range l.rows {
			out = append(out, pickedResource{r, path + "/" + r.name})
		}
		if !sel.Recursive {
			return nil
		}
		subs, err := rn.children(ctx, id)
		if err != nil {
			return err
		}
		for _, f := range subs {
			if err := visit(f.id, path+"/"+f.name); err != nil {
				return err
			}
		}
		return nil
	}
	if err := visit(id, strings.Join(segs, "/")); err != nil {
		return nil, err
	}
	slices.SortStableFunc(out, func(a, b pickedResource) int { return strings.Compare(a.path, b.path) })
	return out, nil
}

// refError is a per-reference failure; anything else aborts the batch.
type refError struct{ error }

func (e refError) Unwrap() error { return e.error }

func isBatchError(err error) bool {
	var re refError
	var nf *fetch.NotFoundError
	var am *fetch.AmbiguousError
	return !errors.As(err, &re) && !errors.As(err, &nf) && !errors.As(err, &am)
}

// locate finds the resource a reference names.
func (rn *run) locate(ctx context.Context, ref fetch.Ref) (*resource, error) {
	if id, ok := ref.ID(); ok {
		return rn.byID(ctx, id)
	}
	segs := ref.Segments()
	if len(segs) == 0 {
		return nil, refError{errors.New("empty path")}
	}
	parent := ""
	if len(segs) > 1 {
		var err error
		if parent, err = rn.walk(ctx, segs[:len(segs)-1]); err != nil {
			return nil, err
		}
	}
	l, err := rn.listing(ctx, parent)
	if err != nil {
		return nil, err
	}
	name := segs[len(segs)-1]
	hits := l.named(name)
	switch len(hits) {
	case 1:
		return hits[0], nil
	case 0:
		where := within(segs[:len(segs)-1])
		nearby := make([]string, len(l.rows))
		for i, r := range l.rows {
			nearby[i] = r.name
		}
		nf := &fetch.NotFoundError{Kind: "resource", Name: name, Within: where, Nearby: nearby}
		if held, ok := rn.folderContents(ctx, parent, segs); ok {
			nf.Folder, nf.Nearby = strings.Join(segs, "/"), held
		}
		if l.undecrypt > 0 {
			verb := "have"
			if l.undecrypt == 1 {
				verb = "has"
			}
			return nil, fmt.Errorf("%w (%s there %s metadata this user cannot decrypt)", nf, fetch.Count(l.undecrypt, "resource", "resources"), verb)
		}
		return nil, nf
	}
	ids := make([]string, len(hits))
	for i, h := range hits {
		ids[i] = h.id
	}
	return nil, &fetch.AmbiguousError{Kind: "resource", Name: ref.Path, Candidates: ids}
}

// folderContents reports whether path (segs, in the folder parent) names a
// folder rather than a resource, and lists what it holds: resources by
// path, folders ending in "/". It runs only when a lookup failed; any
// error just means there is nothing more to say.
func (rn *run) folderContents(ctx context.Context, parent string, segs []string) ([]string, bool) {
	if rn.loadFolders(ctx) != nil {
		return nil, false
	}
	siblings, err := rn.children(ctx, parent)
	if err != nil {
		return nil, false
	}
	name, prefix := segs[len(segs)-1], strings.Join(segs, "/")+"/"
	for _, f := range siblings {
		if f.name != name {
			continue
		}
		var held []string
		if l, err := rn.listing(ctx, f.id); err == nil {
			for _, r := range l.rows {
				held = append(held, prefix+r.name)
			}
		}
		if subs, err := rn.children(ctx, f.id); err == nil {
			for _, sub := range subs {
				held = append(held, prefix+sub.name+"/")
			}
		}
		return held, true
	}
	return nil, false
}

// walk follows folder names from the root and returns the leaf's id. The
// result for each folder path is kept for the run: the references into
// one folder walk it once.
func (rn *run) walk(ctx context.Context, names []string) (string, error) {
	key := strings.Join(names, "/")
	if w, ok := rn.walks[key]; ok {
		return w.id, w.err
	}
	id, err := rn.walkFrom(ctx, names)
	if err != nil && isBatchError(err) {
		return "", err
	}
	if rn.walks == nil {
		rn.walks = map[string]walked{}
	}
	rn.walks[key] = walked{id, err}
	return id, err
}

// within names the folder a path of folder names leads to, for errors.
func within(names []string) string {
	if len(names) == 0 {
		return "the root folder"
	}
	return fmt.Sprintf("folder %q", strings.Join(names, "/"))
}

type walked struct {
	id  string
	err error
}

func (rn *run) walkFrom(ctx context.Context, names []string) (string, error) {
	if err := rn.loadFolders(ctx); err != nil {
		return "", err
	}
	cur := ""
	for i, name := range names {
		subs, err := rn.children(ctx, cur)
		if err != nil {
			return "", err
		}
		var hit folder
		hits := 0
		for _, f := range subs {
			if f.name == name {
				hit, hits = f, hits+1
			}
		}
		switch hits {
		case 0:
			where := within(names[:i])
			nearby := make([]string, len(subs))
			for j, f := range subs {
				nearby[j] = f.name
			}
			return "", &fetch.NotFoundError{Kind: "folder", Name: name, Within: where, Nearby: nearby}
		case 1:
			cur = hit.id
		default:
			var ids []string
			for _, f := range subs {
				if f.name == name {
					ids = append(ids, f.id)
				}
			}
			return "", &fetch.AmbiguousError{Kind: "folder", Name: strings.Join(names[:i+1], "/"), Candidates: ids}
		}
	}
	return cur, nil
}

// children returns the folders directly in parent ("" = root) with their
// names, decrypting the v5 names of that level on first use: a path
// decrypts the names of the folders it passes through and of their
// siblings (it must compare them), not the whole tree. A folder whose
// name this user cannot decrypt is left out (it cannot be named in a
// path).
func (rn *run) children(ctx context.Context, parent string) ([]folder, error) {
	if subs, ok := rn.named[parent]; ok {
		return subs, nil
	}
	var subs []folder
	for _, f := range rn.folders[parent] {
		if f.meta != nil {
			e, err := rn.decryptMetadata(ctx, f.meta.Metadata, f.meta.MetadataKeyType, f.meta.MetadataKeyID)
			if err != nil {
				if isBatchError(err) {
					return nil, err
				}
				continue
			}
			md, ok := e.Value().metadata()
			if !ok {
				continue
			}
			f.name, f.meta = md.Name, nil
		}
		subs = append(subs, f)
	}
	if rn.named == nil {
		rn.named = map[string][]folder{}
	}
	rn.named[parent] = subs
	return subs, nil
}

// loadFolders fetches every visible folder once per run and builds the
// tree (the names of v5 folders are decrypted by children).
func (rn *run) loadFolders(ctx context.Context) error {
	if rn.folders != nil {
		return nil
	}
	const path = "/folders.json"
	var raw rawBody
	if _, err := rn.c.get(ctx, path, &raw); err != nil {
		return err
	}
	tree, key, body, ok := decoded[map[string][]folder](&rn.c.plain, path, raw)
	if ok {
		rn.folders = tree // read-only: children copies
		return nil
	}
	var rows []apiFolder
	if err := fetch.UnmarshalJSON(body, &rows, armoredIn(body)); err != nil {
		return malformed(path)
	}
	known := make(map[string]bool, len(rows))
	for _, f := range rows {
		known[f.ID] = true
	}
	rn.folders = map[string][]folder{}
	for i := range rows {
		f := &rows[i]
		parent := ""
		if f.FolderParentID != nil && known[*f.FolderParentID] {
			parent = *f.FolderParentID
		} else if f.FolderParentID != nil && *f.FolderParentID != "" {
			continue // parent not visible to this user: not reachable by path
		}
		node := folder{id: f.ID, parent: parent, name: f.Name}
		if f.Metadata != nil {
			node.meta = f
		}
		rn.folders[parent] = append(rn.folders[parent], node)
	}
	// The tree holds no plaintext (names are decrypted per run, from the
	// plaintext cache), so it is kept whatever they decrypt to.
	rn.c.plain.keepDecoded(key, path, rn.folders, nil)
	return nil
}

// listingRequest is what the bodies cache knows every listing's body by
// (see decoded).
const listingRequest = "listing"

// listing fetches the resources directly in one folder ("" = root).
func (rn *run) listing(ctx context.Context, parent string) (*listing, error) {
	if l, ok := rn.listings[parent]; ok {
		return l, nil
	}
	p := parent
	if p == "" {
		p = "false" // Passbolt's spelling of "the root folder"
	}
	path := "/resources.json?" + url.Values{"filter[has-parent][]": {p}}.Encode()
	var raw rawBody
	if _, err := rn.c.get(ctx, path, &raw); err != nil {
		return nil, err
	}
	// Every folder's listing is the same function of its body: one
	// request name for all of them, so that equal listings share an entry.
	prev, key, body, ok := decoded[*listing](&rn.c.plain, listingRequest, raw)
	if ok {
		rn.listings[parent] = prev
		return prev, nil
	}
	var rows []apiResource
	if err := fetch.UnmarshalJSON(body, &rows, armoredIn(body)); err != nil {
		return nil, malformed(path)
	}
	l := &listing{}
	var entries []plainRef
	for i := range rows {
		r, err := rn.toResource(ctx, &rows[i])
		if err != nil {
			if isBatchError(err) {
				return nil, err
			}
			l.undecrypt++
			continue
		}
		l.rows = append(l.rows, r)
		if r.meta != (plainRef{}) {
			entries = append(entries, r.meta)
		}
	}
	l.index()
	if l.undecrypt == 0 {
		// What could not be decrypted may be readable next time (a
		// metadata key shared since): only a clean listing is kept.
		rn.c.plain.keepDecoded(key, listingRequest, l, entries)
	}
	rn.listings[parent] = l
	return l, nil
}

// malformed is the error for a body that does not have the shape expected
// (the JSON error is not wrapped: its text can quote a byte of the body).
func malformed(path string) error {
	return fmt.Errorf("passbolt: GET %s: malformed response body", pathOnly(path))
}

type idLookup struct {
	res *resource
	err error
}

// byID returns one resource by its UUID, fetching it once per run however
// many fields of it are referenced.
func (rn *run) byID(ctx context.Context, id string) (*resource, error) {
	if l, ok := rn.byIDs[id]; ok {
		return l.res, l.err
	}
	res, err := rn.fetchByID(ctx, id)
	rn.byIDs[id] = idLookup{res, err}
	return res, err
}

// prefetchIDs loads the resources that references name by id in listings
// of up to secretBatch ids (GET /resources.json?filter[has-id][]=…), not
// one GET each. A single id is left to byID: one request either way.
func (rn *run) prefetchIDs(ctx context.Context, refs []fetch.Ref) error {
	var ids []string
	seen := map[string]bool{}
	for _, ref := range refs {
		if id, ok := ref.ID(); ok && uuidRE().MatchString(id) && !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	if len(ids) < 2 {
		return nil
	}
	for batch := range slices.Chunk(ids, secretBatch) {
		q := url.Values{"filter[has-id][]": batch}
		var rows []apiResource
		if _, err := rn.c.get(ctx, "/resources.json?"+q.Encode(), &rows); err != nil {
			return err
		}
		for i := range rows {
			if !seen[rows[i].ID] {
				continue // not asked for (a server that ignores the filter)
			}
			r, err := rn.idResource(ctx, &rows[i])
			if err != nil && isBatchError(err) {
				return err
			}
			rn.byIDs[rows[i].ID] = idLookup{r, err}
		}
		for _, id := range batch {
			if _, ok := rn.byIDs[id]; !ok {
				rn.byIDs[id] = idLookup{err: &fetch.NotFoundError{Kind: "resource", Name: "id:" + id}}
			}
		}
	}
	return nil
}

func (rn *run) fetchByID(ctx context.Context, id string) (*resource, error) {
	if !uuidRE().MatchString(id) {
		return nil, refError{fmt.Errorf("%q is not a resource UUID", id)}
	}
	var row apiResource
	status, err := rn.c.get(ctx, "/resources/"+id+".json", &row)
	if status == http.StatusNotFound {
		return nil, &fetch.NotFoundError{Kind: "resource", Name: "id:" + id}
	}
	if err != nil {
		return nil, err
	}
	return rn.idResource(ctx, &row)
}

// toResource turns a v4 row as is, or decrypts a v5 row's metadata.
func (rn *run) toResource(ctx context.Context, a *apiResource) (*resource, error) {
	r := &resource{id: a.ID, typeID: a.ResourceTypeID}
	if a.Metadata == nil {
		r.name, r.username, r.description = a.Name, a.Username, a.Description
		if a.URI != "" {
			r.uris = []string{a.URI}
		}
		return r, nil
	}
	if err := rn.openMetadata(ctx, r, a); err != nil {
		return nil, err
	}
	return r, nil
}

// idResource is toResource for a resource found by id: a v5 row's
// metadata is decrypted only when a reference needs it (needMetadata), so
// a template that reads passwords by id decrypts one message per
// resource, not two. A row without a resource_type_id needs its metadata
// for the type, and gets it now.
func (rn *run) idResource(ctx context.Context, a *apiResource) (*resource, error) {
	if a.Metadata == nil || a.ResourceTypeID == "" {
		return rn.toResource(ctx, a)
	}
	return &resource{id: a.ID, typeID: a.ResourceTypeID, pending: a}, nil
}

// secretOnly reports whether a resource's type answers field from the
// secret alone (typeHas tells whether the type has it).
func secretOnly(field string) bool {
	switch field {
	case fieldPassword, fieldTOTP, fieldPinCode:
		return true
	}
	return false
}

// typeHas reports whether a known resource type has the standard field f.
func typeHas(typ resourceType, f string) bool {
	fields, known := typeFields()[typ.slug]
	return known && slices.Contains(fields, f)
}

// needMetadata decrypts the metadata of a resource found by id, once.
func (rn *run) needMetadata(ctx context.Context, r *resource) error {
	if a := r.pending; a != nil {
		r.pending = nil
		r.metaErr = rn.openMetadata(ctx, r, a)
	}
	return r.metaErr
}

// openMetadata decrypts a v5 row's metadata into r.
func (rn *run) openMetadata(ctx context.Context, r *resource, a *apiResource) error {
	e, err := rn.decryptMetadata(ctx, a.Metadata, a.MetadataKeyType, a.MetadataKeyID)
	if err != nil {
		return err
	}
	md, ok := e.Value().metadata() // parsed once per message, shared read-only
	if !ok {
		return refError{fmt.Errorf("resource %s: decrypted metadata is not JSON", a.ID)}
	}
	r.name, r.username, r.uris, r.description, r.custom = md.Name, md.Username, md.URIs, md.Description, md.CustomFields
	r.meta = e
	if md.ResourceTypeID != "" && r.typeID == "" {
		r.typeID = md.ResourceTypeID
	}
	return nil
}

// decryptMetadata decrypts v5 metadata with the user key (user_key) or
// with a shared metadata key (shared_key).
func (rn *run) decryptMetadata(ctx context.Context, msg armored, keyType, keyID string) (plainRef, error) {
	var key *pgp.Decrypter
	switch keyType {
	case "user_key":
		key = rn.c.dec
	case "shared_key":
		var err error
		if key, err = rn.metadataKey(ctx, keyID); err != nil {
			return plainRef{}, err
		}
	default:
		return plainRef{}, refError{fmt.Errorf("unknown metadata_key_type %q", keyType)}
	}
	e, err := rn.c.plain.open(msg, key)
	if err != nil {
		return plainRef{}, refError{fmt.Errorf("metadata: %w", err)}
	}
	return e, nil
}

// metadataKey returns a decrypted shared metadata key. Keys are cached for
// the client's lifetime; an unknown id (key rotation) triggers at most one
// fetch of /metadata/keys.json per run.
func (rn *run) metadataKey(ctx context.Context, id string) (*pgp.Decrypter, error) {
	c := rn.c
	c.keysMu.Lock()
	defer c.keysMu.Unlock()
	if k := c.metaKeys[id]; k != nil {
		return k, nil
	}
	if rn.keysRead {
		return nil, refError{fmt.Errorf("metadata key %s is not shared with this user", id)}
	}
	rn.keysRead = true
	var keys []struct {
		ID          string `json:"id"`
		PrivateKeys []struct {
			UserID string `json:"user_id"`
			Data   string `json:"data"`
		} `json:"metadata_private_keys"`
	}
	if _, err := c.get(ctx, "/metadata/keys.json?contain%5Bmetadata_private_keys%5D=1", &keys); err != nil {
		return nil, err
	}
	c.mu.Lock()
	me := c.userID
	c.mu.Unlock()
	for _, k := range keys {
		for _, pk := range k.PrivateKeys {
			if pk.UserID != me {
				continue
			}
			key, err := c.openMetadataKey(pk.Data)
			if err != nil {
				return nil, refError{fmt.Errorf("metadata key %s: %w", k.ID, err)}
			}
			c.metaKeys[k.ID] = key
		}
	}
	if k := c.metaKeys[id]; k != nil {
		return k, nil
	}
	return nil, refError{fmt.Errorf("metadata key %s is not shared with this user", id)}
}

// openMetadataKey decrypts a metadata_private_keys entry: JSON holding the
// armored shared private key and its (usually empty) passphrase.
func (c *Client) openMetadataKey(data string) (*pgp.Decrypter, error) {
	plain, err := c.dec.DecryptUnverified(data)
	if err != nil {
		return nil, err
	}
	var pk struct {
		ArmoredKey string `json:"armored_key"`
		Passphrase string `json:"passphrase"`
	}
	if json.Unmarshal(plain, &pk) != nil {
		return nil, errors.New("decrypted private key entry is not JSON")
	}
	key, err := pgp.ParsePrivateKey(pk.ArmoredKey, []byte(pk.Passphrase))
	if err != nil {
		return nil, err
	}
	return pgp.NewDecrypter(key)
}

// secretResult is one fetched, decrypted secret, or why it is missing.
type secretResult struct {
	plain []byte
	entry plainRef // where plain is cached, with its parsed JSON
	err   error
}

// json is the secret parsed as JSON, parsed once per message.
func (s *secretResult) json() (*secretJSON, bool) {
	if e := s.entry.Value(); e != nil {
		return e.secret()
	}
	var v secretJSON
	if json.Unmarshal(s.plain, &v) != nil {
		return nil, false
	}
	return &v, true
}

// secretBatch is how many resource ids one batched secret request names.
// Each repeated, percent-encoded filter[has-id][]=<uuid>& costs 62 bytes,
// so 100 ids make a request line of about 6.2 KB: under the 8 KB that
// nginx (large_client_header_buffers) and Apache (LimitRequestLine) accept
// by default, and far below PHP's max_input_vars (1,000).
const secretBatch = 100

// secretFetchers bounds concurrent secret requests (batches, and the
// per-secret fallback).
const secretFetchers = 4

// fetchSecrets fills want (resource id → nil) with decrypted secrets. It
// asks for the rows of exactly these resources with contain[secret]=1, so
// the server reads (and logs an access to) only the referenced secrets.
// A resource whose row comes back without its secret (a server that does
// not know contain[secret]) is fetched from /secrets/resource/{id}.json.
func (rn *run) fetchSecrets(ctx context.Context, want map[string]*secretResult) error {
	ids := make([]string, 0, len(want))
	for id := range want {
		ids = append(ids, id)
	}
	slices.Sort(ids) // stable batches, whatever the map order
	var mu sync.Mutex
	var missing []string
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(secretFetchers)
	for batch := range slices.Chunk(ids, secretBatch) {
		g.Go(func() error {
			got, err := rn.secretBatch(gctx, batch)
			if err != nil {
				return err
			}
			mu.Lock()
			defer mu.Unlock()
			for _, id := range batch {
				if res, ok := got[id]; ok {
					want[id] = res
				} else {
					missing = append(missing, id)
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}

	g, gctx = errgroup.WithContext(ctx)
	g.SetLimit(secretFetchers)
	for _, id := range missing {
		g.Go(func() error {
			res, err := rn.secretByID(gctx, id)
			if err != nil {
				return err
			}
			mu.Lock()
			want[id] = res
			mu.Unlock()
			return nil
		})
	}
	return g.Wait()
}

// secretBatch reads the caller's secrets of the given resources in one
// GET /resources.json?filter[has-id][]=…&contain[secret]=1. Resources the
// reply has no secret for are left out of the result.
func (rn *run) secretBatch(ctx context.Context, ids []string) (map[string]*secretResult, error) {
	path := "/resources.json?" + url.Values{"filter[has-id][]": ids, "contain[secret]": {"1"}}.Encode()
	var raw rawBody
	if _, err := rn.c.get(ctx, path, &raw); err != nil {
		return nil, err
	}
	// The result depends on the ids asked for (rows not asked for are
	// left out): a body is reused only for the same request.
	prev, key, body, ok := decoded[map[string]*secretResult](&rn.c.plain, path, raw)
	if ok {
		return prev, nil
	}
	var rows []struct {
		ID      string `json:"id"`
		Secrets []struct {
			ResourceID string  `json:"resource_id"`
			Data       armored `json:"data"`
		} `json:"secrets"`
	}
	if err := fetch.UnmarshalJSON(body, &rows, armoredIn(body)); err != nil {
		return nil, malformed(path)
	}
	asked := make(map[string]bool, len(ids))
	for _, id := range ids {
		asked[id] = true
	}
	out := make(map[string]*secretResult, len(ids))
	entries := make([]plainRef, 0, len(ids))
	for _, row := range rows {
		// Only the caller's secret is contained; ignore rows not asked for.
		if !asked[row.ID] || len(row.Secrets) == 0 || row.Secrets[0].Data == nil {
			continue
		}
		res := rn.decryptSecret(row.ID, row.Secrets[0].Data)
		out[row.ID] = res
		if res.entry != (plainRef{}) {
			entries = append(entries, res.entry)
		}
	}
	if len(entries) == len(ids) {
		// Every secret asked for came and opened: the result is kept for
		// the same body (read-only, shared by later runs).
		rn.c.plain.keepDecoded(key, path, out, entries)
	}
	return out, nil
}

// secretByID reads one secret from GET /secrets/resource/{id}.json.
func (rn *run) secretByID(ctx context.Context, id string) (*secretResult, error) {
	var s struct {
		Data armored `json:"data"`
	}
	status, err := rn.c.get(ctx, "/secrets/resource/"+id+".json", &s)
	switch {
	case status == http.StatusNotFound:
		return &secretResult{err: &fetch.NotFoundError{Kind: "secret", Name: "of resource " + id}}, nil
	case err != nil:
		return nil, err
	}
	return rn.decryptSecret(id, s.Data), nil
}

func (rn *run) decryptSecret(id string, msg armored) *secretResult {
	e, err := rn.c.plain.open(msg, rn.c.dec)
	if err != nil {
		return &secretResult{err: fmt.Errorf("secret of resource %s: %w", id, err)}
	}
	return &secretResult{plain: e.Value().plain, entry: e}
}

// resourceType is the part of a resource type the client needs.
type resourceType struct {
	slug         string
	secretString bool // the decrypted secret is a bare password string
}

// resourceType maps a resource_type_id to its type, fetching the list of
// types once per client (and again once per run for an unknown id).
func (rn *run) resourceType(ctx context.Context, id string) (resourceType, error) {
	c := rn.c
	c.mu.Lock()
	t, ok := c.types[id]
	c.mu.Unlock()
	if ok {
		return t, nil
	}
	if rn.typesRead {
		return resourceType{}, refError{fmt.Errorf("unknown resource type %s", id)}
	}
	rn.typesRead = true
	var rows []struct {
		ID         string          `json:"id"`
		Slug       string          `json:"slug"`
		Definition json.RawMessage `json:"definition"`
	}
	if _, err := c.get(ctx, "/resource-types.json", &rows); err != nil {
		return resourceType{}, err
	}
	types := make(map[string]resourceType, len(rows))
	for _, r := range rows {
		types[r.ID] = resourceType{slug: r.Slug, secretString: secretIsString(r.Slug, r.Definition)}
	}
	c.mu.Lock()
	c.types = types
	c.mu.Unlock()
	if t, ok := types[id]; ok {
		return t, nil
	}
	return resourceType{}, refError{fmt.Errorf("unknown resource type %s", id)}
}

// secretIsString reads definition.secret.type (the definition may itself
// be JSON-encoded as a string); the slug decides when it is absent.
func secretIsString(slug string, def json.RawMessage) bool {
	var s string
	if json.Unmarshal(def, &s) == nil {
		def = json.RawMessage(s)
	}
	var d struct {
		Secret struct {
			Type string `json:"type"`
		} `json:"secret"`
	}
	if json.Unmarshal(def, &d) == nil && d.Secret.Type != "" {
		return d.Secret.Type == "string"
	}
	return slug == "password-string" || slug == "v5-password-string"
}
