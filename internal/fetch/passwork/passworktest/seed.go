package passworktest

import (
	"encoding/base64"
	"fmt"
	"sort"
	"strings"

	pwcrypto "github.com/injector-dev/injector/internal/crypto/passwork"
	"github.com/injector-dev/injector/internal/fetch/fetchtest"
)

// TOTPFieldName is the name of the custom field (type "totp") that holds an
// Entry's TOTP secret.
const TOTPFieldName = "TOTP"

// Seed stores entries, encrypting them the way the official clients do.
// Path is "Vault/Folder/…/Name"; vaults and folders are created on demand.
// Seeding the same path twice creates two entries (Passwork allows
// duplicate names).
func (s *Server) Seed(entries []fetchtest.Entry) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range entries {
		if err := s.seedOne(e, ""); err != nil {
			return fmt.Errorf("passworktest: seed %q: %w", e.Path, err)
		}
	}
	return nil
}

// seedOne stores e under id, or under a new id when id is "".
func (s *Server) seedOne(e fetchtest.Entry, id string) error {
	var segs []string
	for _, p := range strings.Split(e.Path, "/") {
		if p != "" {
			segs = append(segs, p)
		}
	}
	if len(segs) < 2 {
		return fmt.Errorf("path needs at least a vault and a name")
	}
	v, parent, err := s.seedLocation(segs[:len(segs)-1])
	if err != nil {
		return err
	}
	plain := v.MasterKeyEncrypted == nil

	// enc encrypts one value under the item key, or base64s it with CSE off.
	itemKey := randomString(100)
	if !plain && s.opts.noItemKeys {
		itemKey = s.seeder.vaultKeys[v.ID]
	}
	enc := func(x string) (string, error) {
		if plain {
			return base64.StdEncoding.EncodeToString([]byte(x)), nil
		}
		return pwcrypto.Encrypt(x, itemKey)
	}
	if id == "" {
		id = s.newID()
	}
	it := &item{
		ID: id, VaultID: v.ID, FolderID: parent, Name: segs[len(segs)-1],
		Login: e.Fields["login"], URL: e.Fields["url"], Descr: e.Fields["description"],
		URLs: []string{}, Tags: []string{},
	}
	if it.URL != "" {
		it.URLs = append(it.URLs, it.URL)
	}
	for _, t := range strings.Split(e.Fields["tags"], ",") {
		if t = strings.TrimSpace(t); t != "" {
			it.Tags = append(it.Tags, t)
		}
	}
	if !plain && !s.opts.noItemKeys {
		k, err := pwcrypto.Encrypt(itemKey, s.seeder.vaultKeys[v.ID])
		if err != nil {
			return err
		}
		it.KeyEncrypted = &k
	}
	if it.PasswordEncrypted, err = enc(e.Fields["password"]); err != nil {
		return err
	}
	type field struct{ name, typ, value string }
	var fields []field
	names := make([]string, 0, len(e.Custom))
	for n := range e.Custom {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fields = append(fields, field{n, "text", e.Custom[n]})
	}
	if e.TOTP != "" {
		fields = append(fields, field{TOTPFieldName, "totp", e.TOTP})
	}
	for _, f := range fields {
		var c custom
		if c.Name, err = enc(f.name); err != nil {
			return err
		}
		if c.Type, err = enc(f.typ); err != nil {
			return err
		}
		if c.Value, err = enc(f.value); err != nil {
			return err
		}
		it.Customs = append(it.Customs, c)
	}
	files := make([]string, 0, len(e.Attachments))
	for n := range e.Attachments {
		files = append(files, n)
	}
	sort.Strings(files)
	for _, n := range files {
		a, err := s.encryptAttachment(n, e.Attachments[n], itemKey, plain)
		if err != nil {
			return err
		}
		it.Attachments = append(it.Attachments, a)
	}
	s.addItem(it)
	for _, loc := range e.Shortcuts {
		if err := s.seedShortcut(it, itemKey, plain, loc); err != nil {
			return fmt.Errorf("shortcut in %q: %w", loc, err)
		}
	}
	return nil
}

// seedShortcut places a shortcut to it at loc ("Vault/Folder/…"), its
// item key wrapped with the shortcut vault's key, as the SDK's
// create_shortcut does.
func (s *Server) seedShortcut(it *item, itemKey string, plain bool, loc string) error {
	segs := strings.FieldsFunc(loc, func(r rune) bool { return r == '/' })
	if len(segs) == 0 {
		return fmt.Errorf("location needs at least a vault")
	}
	v, parent, err := s.seedLocation(segs)
	if err != nil {
		return err
	}
	sc := &shortcut{ID: s.newID(), ItemID: it.ID, VaultID: v.ID, FolderID: parent}
	switch targetPlain := v.MasterKeyEncrypted == nil; {
	case plain != targetPlain:
		return fmt.Errorf("the entry's vault and the shortcut's vault differ in client-side encryption")
	case !plain:
		k, err := pwcrypto.Encrypt(itemKey, s.seeder.vaultKeys[v.ID])
		if err != nil {
			return err
		}
		sc.KeyEncrypted = &k
	}
	s.addShortcut(sc)
	return nil
}

// encryptAttachment follows js-connector: a random 100-character key
// wrapped under the item key, the file's base64 text encrypted under it.
func (s *Server) encryptAttachment(name string, data []byte, itemKey string, plain bool) (*attachment, error) {
	a := &attachment{ID: s.newID(), Name: name, Hash: pwcrypto.AttachmentHash(data)}
	if s.opts.md5Attachments {
		a.Hash = pwcrypto.AttachmentHashMD5(data)
	}
	b64 := base64.StdEncoding.EncodeToString(data)
	if plain {
		a.EncryptedKey = base64.StdEncoding.EncodeToString([]byte(strings.Repeat("a", 32)))
		a.EncryptedData = base64.StdEncoding.EncodeToString([]byte(b64))
		return a, nil
	}
	attKey := randomString(100)
	var err error
	if a.EncryptedKey, err = pwcrypto.Encrypt(attKey, itemKey); err != nil {
		return nil, err
	}
	if a.EncryptedData, err = pwcrypto.Encrypt(b64, attKey); err != nil {
		return nil, err
	}
	return a, nil
}

// seedLocation returns the vault named segs[0] and the folder segs[1:]
// within it ("" for the vault root), creating what is missing.
func (s *Server) seedLocation(segs []string) (*vault, string, error) {
	v, err := s.vaultNamed(segs[0])
	if err != nil {
		return nil, "", err
	}
	if v.apiCreated {
		return nil, "", fmt.Errorf("vault %q was created through the API: only its creator knows its key", v.Name)
	}
	parent := ""
	for _, name := range segs[1:] {
		parent = s.folderNamed(v.ID, parent, name).ID
	}
	return v, parent, nil
}

// vaultNamed returns the vault with that name, creating it with a fresh
// random key wrapped for the user (RSA for v7, AESpw for v4).
func (s *Server) vaultNamed(name string) (*vault, error) {
	for _, v := range s.vaults {
		if v.Name == name {
			return v, nil
		}
	}
	v := &vault{ID: s.newID(), Name: name}
	if !s.opts.plainVaults[name] && !s.opts.noCSE {
		key := randomString(100)
		s.seeder.vaultKeys[v.ID] = key
		wrapped, err := pwcrypto.WrapKey(s.seeder.pub, key, s.opts.oaep)
		if err != nil {
			return nil, err
		}
		v.MasterKeyEncrypted = &wrapped
		pass := s.seeder.masterKey
		if s.opts.domainVaults[name] {
			dm := randomString(100)
			dmEnc, err := pwcrypto.Encrypt(dm, s.seeder.masterKey)
			if err != nil {
				return nil, err
			}
			v.Scope, v.DomainMaster, pass = "domain", &dmEnc, dm
		}
		pc, err := pwcrypto.Encrypt(key, pass)
		if err != nil {
			return nil, err
		}
		v.PasswordCrypted = &pc
		if s.opts.legacyVaultPwd {
			stale, err := pwcrypto.Encrypt(randomString(100), pass)
			if err != nil {
				return nil, err
			}
			v.StalePassword = &stale
		}
	}
	s.addVault(v)
	return v, nil
}

func (s *Server) folderNamed(vaultID, parentID, name string) *folder {
	if f := s.idx.folderNames[folderKey{vaultID, parentID, name}]; f != nil {
		return f
	}
	f := &folder{ID: s.newID(), Name: name, VaultID: vaultID, ParentID: parentID}
	s.addFolder(f)
	return f
}

// pathElem is one element of an item's location, vault first.
type pathElem struct {
	ID, Name, Type string
}

// location returns [vault, folder, …] for an item.
func (s *Server) location(it *item) []pathElem { return s.locationOf(it.VaultID, it.FolderID) }

// locationOf returns [vault, folder, …] down to folderID ("" = the vault
// root).
func (s *Server) locationOf(vaultID, folderID string) []pathElem {
	var rev []pathElem
	for fid := folderID; fid != ""; {
		f := s.folderByID(fid)
		if f == nil {
			break
		}
		rev = append(rev, pathElem{f.ID, f.Name, "folder"})
		fid = f.ParentID
	}
	out := []pathElem{{vaultID, s.vaultByID(vaultID).Name, "vault"}}
	for i := len(rev) - 1; i >= 0; i-- {
		out = append(out, rev[i])
	}
	return out
}

func (s *Server) itemPath(it *item) string {
	var names []string
	for _, p := range s.location(it) {
		names = append(names, p.Name)
	}
	return strings.Join(append(names, it.Name), "/")
}

// Update replaces every entry at e.Path with e, re-encrypted under a new
// item key, as an edit in the web client would: the entry keeps its id (the
// first one's, when the path named several), so a client asking for the
// same ids gets a changed body. Daemon tests use it to change a secret
// between refreshes.
func (s *Server) Update(e fetchtest.Entry) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	want := strings.Trim(e.Path, "/")
	removed := s.removeItems(func(it *item) bool { return s.itemPath(it) == want })
	if len(removed) == 0 {
		return fmt.Errorf("passworktest: update %q: no such entry", e.Path)
	}
	if err := s.seedOne(e, removed[0].ID); err != nil {
		return fmt.Errorf("passworktest: update %q: %w", e.Path, err)
	}
	return nil
}

// Delete moves every entry at path to the bin, as deleting it in the web
// client would. Tests use it to remove an entry between refreshes.
func (s *Server) Delete(path string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	want := strings.Trim(path, "/")
	removed := s.removeItems(func(it *item) bool { return s.itemPath(it) == want })
	if len(removed) == 0 {
		return fmt.Errorf("passworktest: delete %q: no such entry", path)
	}
	s.bin = append(s.bin, removed...)
	return nil
}
