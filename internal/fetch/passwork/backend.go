package passwork

import (
	"context"
	"errors"
)

// backend is one API generation. Resolve drives it the same way for both:
// authenticate, map vault names, list entry summaries of the vaults named,
// fetch the full entries, unwrap keys, fetch attachments.
type backend interface {
	// auth establishes a session and the master key if not done yet.
	auth(ctx context.Context) error
	// logout ends the session auth opened, if it opened one.
	logout(ctx context.Context) error
	// vaults returns name → ids; fresh forces a refetch.
	vaults(ctx context.Context, fresh bool) (map[string][]string, error)
	// list returns summaries (id, name, location) of every entry in the vaults.
	list(ctx context.Context, vaultIDs []string) ([]summary, error)
	// shortcuts returns summaries of the shortcuts placed in the vaults:
	// the entry's name at the shortcut's location, under an id get
	// understands (shortcutID).
	shortcuts(ctx context.Context, vaultIDs []string) ([]summary, error)
	// get fetches full entries; ids the server does not return are absent
	// from the map, failures other than "not found" are in errs.
	get(ctx context.Context, ids []string) (entries map[string]*entry, errs map[string]error, err error)
	// itemKey returns the key an entry's values are encrypted under, or
	// plain=true when the entry is stored with client-side encryption off.
	itemKey(ctx context.Context, e *entry) (key string, plain bool, err error)
	// attachments fetches attachment records, keyed like the request.
	attachments(ctx context.Context, reqs []attRef) (map[attRef]*attachmentData, map[attRef]error, error)
	// attachmentHash is the integrity hash of data, computed the way the
	// stored hash was (its length tells the algorithm on v4).
	attachmentHash(data []byte, stored string) string
}

// summary is an entry as search/list results describe it.
type summary struct {
	id, vaultID, name string
	folders           []string // folder names from the vault down, vault excluded
	tags              []string // for tag selections
}

// entry is a full entry, still encrypted.
type entry struct {
	id, vaultID, name       string
	login, url, description string
	urls, tags              []string
	passwordEnc             string
	keyEnc, vaultKeyEnc     *string
	customs                 []encCustom
	attachments             []attRef
}

type encCustom struct {
	Name  string `json:"name"`
	Type  string `json:"type"`
	Value string `json:"value"`
}

// attRef names one attachment of one entry: key is the entry's id as
// Resolve fetched it (a shortcutID for an entry reached by shortcut),
// itemID the entry's own id, which attachment URLs use.
type attRef struct{ key, itemID, attID, name string }

// shortcutID is how a shortcut's entry is named in summaries and get:
// fetched through the shortcut, its keys are the shortcut's.
func shortcutID(id string) string { return "shortcut:" + id }

type attachmentData struct {
	EncryptedKey  string `json:"encryptedKey"`
	EncryptedData string `json:"encryptedData"`
	Hash          string `json:"hash"`
}

// aespwPrefix is how every AESpw ciphertext starts: Passwork's base32 of
// "U2FsdGVkX1", itself the base64 of CryptoJS's "Salted__" header.
const aespwPrefix = "amt4cwv48xb6pp1h"

// errEncryptedNoKey is a value that looks encrypted in an entry judged to
// have client-side encryption off. Base64-decoding it could "succeed" and
// inject garbage, so it is refused.
var errEncryptedNoKey = errors.New("entry is encrypted but no key is available for it (the server sent no item or vault key)")

// pathElem is one element of a server-side location array.
type pathElem struct {
	ID    string `json:"id"`
	Name  string `json:"name"`
	Type  string `json:"type"`
	Order int    `json:"order"`
}

// folderNames turns a location array into folder names. The vault element
// is dropped: by type when the server sends types, else the first element
// (which is the vault on every server seen so far).
func folderNames(path []pathElem) []string {
	typed := false
	for _, p := range path {
		if p.Type != "" {
			typed = true
		}
	}
	var out []string
	for i, p := range path {
		if typed && p.Type == "vault" || !typed && i == 0 {
			continue
		}
		out = append(out, p.Name)
	}
	return out
}
