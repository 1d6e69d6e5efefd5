package passworktest

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"

	pwcrypto "github.com/injector-dev/injector/internal/crypto/passwork"
)

// Passwork 7 writes, as the official SDK and passwork-cli make them: the
// client encrypts, the server stores what it is sent. Like a real server
// it can check only the shape of what it cannot read: every encrypted
// value in a vault with client-side encryption must be an AESpw
// ciphertext, every value in a vault without it plain base64, the vault
// key an RSA block of the user's key size; references (vault, folder,
// item) must exist. Errors use the API's shape with the field named.

func (s *Server) routesV7Writes() {
	s.mux.HandleFunc("POST /api/v1/vaults", s.authV7(s.createVaultV7))
	s.mux.HandleFunc("POST /api/v1/folders", s.authV7(s.createFolderV7))
	s.mux.HandleFunc("POST /api/v1/items", s.authV7(s.createItemV7))
	s.mux.HandleFunc("PATCH /api/v1/items/{id}", s.authV7(s.patchItemV7))
	s.mux.HandleFunc("DELETE /api/v1/items/{id}", s.authV7(s.deleteItemV7))
	s.mux.HandleFunc("POST /api/v1/shortcuts", s.authV7(s.createShortcutV7))
	s.mux.HandleFunc("DELETE /api/v1/shortcuts/{id}", s.authV7(s.deleteShortcutV7))
}

// fieldError is one entry of {"errors":[…]}.
type fieldError struct {
	Code    string `json:"code"`
	Field   string `json:"field"`
	Message string `json:"message"`
}

type fieldErrors []fieldError

func (e *fieldErrors) add(code, field, msg string) {
	*e = append(*e, fieldError{code, field, msg})
}

func writeV7Errors(w http.ResponseWriter, r *http.Request, status int, errs fieldErrors) {
	writeV7(w, r, status, map[string]any{"errors": errs})
}

// decodeV7 reads a JSON object body into out, or answers 400.
func decodeV7(w http.ResponseWriter, r *http.Request, out any) bool {
	data, err := io.ReadAll(io.LimitReader(r.Body, 16<<20)) // attachments are up to 5 MB, base64 twice
	if err == nil && json.Unmarshal(data, out) == nil {
		return true
	}
	writeV7Error(w, r, http.StatusBadRequest, "invalidRequest", "Request body is not a JSON object")
	return false
}

// isAESpw reports whether v is an AESpw ciphertext: Passwork base32 of the
// base64 of "Salted__", an 8-byte salt and whole AES blocks.
func isAESpw(v string) bool {
	if !strings.HasPrefix(strings.ToLower(v), "amt4cwv48xb6pp1h") {
		return false
	}
	raw, err := base64.StdEncoding.DecodeString(string(pwcrypto.DecodeBase32(v)))
	return err == nil && len(raw) >= 32 && len(raw)%16 == 0 && string(raw[:8]) == "Salted__"
}

func isBase64(v string) bool {
	_, err := base64.StdEncoding.DecodeString(v)
	return err == nil
}

// checkValue checks one stored value: AESpw in a vault with client-side
// encryption, plain base64 in one without.
func checkValue(errs *fieldErrors, field, v string, plain bool) {
	switch {
	case v == "":
	case plain && !isBase64(v):
		errs.add("invalidValue", field, "Value must be base64 (client-side encryption is off in this vault)")
	case !plain && !isAESpw(v):
		errs.add("invalidEncryptedValue", field, "Value must be encrypted on the client (client-side encryption is on in this vault)")
	}
}

// checkKey checks a wrapped item key: required and AESpw with client-side
// encryption, absent without.
func checkKey(errs *fieldErrors, field string, k *string, plain bool) {
	switch {
	case plain && k != nil && *k != "":
		errs.add("invalidValue", field, "Must be null: client-side encryption is off in this vault")
	case !plain && (k == nil || *k == ""):
		errs.add("fieldRequired", field, "Required: client-side encryption is on in this vault")
	case !plain && !isAESpw(*k):
		errs.add("invalidEncryptedValue", field, "Must be encrypted with the vault key")
	}
}

// checkFolder checks that folderID ("" = vault root) is a folder of vaultID.
func (s *Server) checkFolder(errs *fieldErrors, field, vaultID, folderID string) {
	if folderID == "" {
		return
	}
	if f := s.folderByID(folderID); f == nil || f.VaultID != vaultID {
		errs.add("folderNotFound", field, "Folder not found in this vault")
	}
}

func (s *Server) createVaultV7(w http.ResponseWriter, r *http.Request) {
	var b struct {
		Name               string  `json:"name"`
		MasterKeyEncrypted *string `json:"masterKeyEncrypted"`
		MasterKeyHash      string  `json:"masterKeyHash"`
		Salt               string  `json:"salt"`
		TypeID             *string `json:"typeId"`
	}
	if !decodeV7(w, r, &b) {
		return
	}
	var errs fieldErrors
	if strings.TrimSpace(b.Name) == "" {
		errs.add("fieldRequired", "name", "Vault name is required")
	}
	if b.TypeID != nil && *b.TypeID != "" {
		errs.add("vaultTypeNotFound", "typeId", "Vault types are not enabled on this server")
	}
	// The user has keys, so client-side encryption is on: the vault key
	// must come wrapped with the user's RSA key (PKCS#1 v1.5 or OAEP; the
	// server cannot tell which).
	if b.MasterKeyEncrypted == nil || *b.MasterKeyEncrypted == "" {
		errs.add("fieldRequired", "masterKeyEncrypted", "Vault key wrapped with your public key is required")
	} else if raw, err := base64.StdEncoding.DecodeString(*b.MasterKeyEncrypted); err != nil || len(raw) != s.seeder.pub.Size() {
		errs.add("invalidValue", "masterKeyEncrypted", "Must be the base64 of an RSA block for your key")
	}
	if len(errs) > 0 {
		writeV7Errors(w, r, http.StatusBadRequest, errs)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	v := &vault{ID: s.newID(), Name: b.Name, MasterKeyEncrypted: b.MasterKeyEncrypted, MasterKeyHash: b.MasterKeyHash,
		Salt: b.Salt, apiCreated: true}
	s.addVault(v)
	writeV7(w, r, http.StatusOK, vaultJSONv7(v))
}

func (s *Server) createFolderV7(w http.ResponseWriter, r *http.Request) {
	var b struct {
		Name           string `json:"name"`
		VaultID        string `json:"vaultId"`
		ParentID       string `json:"parentId"`
		ParentFolderID string `json:"parentFolderId"`
	}
	if !decodeV7(w, r, &b) {
		return
	}
	parent := b.ParentFolderID
	if parent == "" {
		parent = b.ParentID
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs fieldErrors
	if strings.TrimSpace(b.Name) == "" {
		errs.add("fieldRequired", "name", "Folder name is required")
	}
	if s.vaultByID(b.VaultID) == nil {
		errs.add("vaultNotFound", "vaultId", "Vault not found")
	} else {
		s.checkFolder(&errs, "parentFolderId", b.VaultID, parent)
	}
	if len(errs) > 0 {
		writeV7Errors(w, r, http.StatusBadRequest, errs)
		return
	}
	f := &folder{ID: s.newID(), Name: b.Name, VaultID: b.VaultID, ParentID: parent}
	s.addFolder(f)
	writeV7(w, r, http.StatusOK, s.folderJSONv7(f))
}

// itemBody is an item write; pointers tell "absent" from "empty" for PATCH.
type itemBody struct {
	VaultID           *string     `json:"vaultId"`
	FolderID          *string     `json:"folderId"`
	Name              *string     `json:"name"`
	Login             *string     `json:"login"`
	URL               *string     `json:"url"`
	URLs              *[]string   `json:"urls"`
	Description       *string     `json:"description"`
	Tags              *[]string   `json:"tags"`
	Color             *int        `json:"color"`
	PasswordEncrypted *string     `json:"passwordEncrypted"`
	KeyEncrypted      *string     `json:"keyEncrypted"`
	Customs           *[]custom   `json:"customs"`
	Attachments       *[]attInput `json:"attachments"`
}

type attInput struct {
	Name          string `json:"name"`
	EncryptedKey  string `json:"encryptedKey"`
	EncryptedData string `json:"encryptedData"`
	Hash          string `json:"hash"`
}

// applyItem checks b and writes it into it (a copy the caller commits only
// without errors). The caller holds s.mu and has set it.VaultID.
func (s *Server) applyItem(b *itemBody, it *item, create bool, errs *fieldErrors) {
	plain := s.vaultByID(it.VaultID).MasterKeyEncrypted == nil
	if b.FolderID != nil {
		s.checkFolder(errs, "folderId", it.VaultID, *b.FolderID)
		it.FolderID = *b.FolderID
	}
	set := func(dst *string, src *string) {
		if src != nil {
			*dst = *src
		}
	}
	set(&it.Name, b.Name)
	set(&it.Login, b.Login)
	set(&it.Descr, b.Description)
	if b.URL != nil {
		it.URL, it.URLs = *b.URL, nil
		if *b.URL != "" {
			it.URLs = []string{*b.URL}
		}
	}
	if b.URLs != nil {
		it.URLs = append([]string{}, *b.URLs...)
		if len(it.URLs) > 0 && b.URL == nil {
			it.URL = it.URLs[0]
		}
	}
	if it.URLs == nil {
		it.URLs = []string{}
	}
	if b.Tags != nil {
		it.Tags = []string{}
		for _, t := range *b.Tags {
			if t = strings.TrimSpace(t); t != "" {
				it.Tags = append(it.Tags, t)
			}
		}
	}
	if b.Color != nil {
		if *b.Color < 0 {
			errs.add("invalidValue", "color", "Color codes are not negative")
		}
		it.Color = *b.Color
	}
	if create || b.KeyEncrypted != nil {
		checkKey(errs, "keyEncrypted", b.KeyEncrypted, plain)
		it.KeyEncrypted = b.KeyEncrypted
		if plain {
			it.KeyEncrypted = nil
		}
	}
	if b.PasswordEncrypted != nil {
		checkValue(errs, "passwordEncrypted", *b.PasswordEncrypted, plain)
		it.PasswordEncrypted = *b.PasswordEncrypted
	}
	if b.Customs != nil {
		it.Customs = []custom{}
		for i, c := range *b.Customs {
			for field, v := range map[string]string{"name": c.Name, "type": c.Type, "value": c.Value} {
				if v == "" && field != "value" {
					errs.add("fieldRequired", "customs."+strconv.Itoa(i)+"."+field, "Custom field "+field+" is required")
				}
				checkValue(errs, "customs."+strconv.Itoa(i)+"."+field, v, plain)
			}
			it.Customs = append(it.Customs, c)
		}
	}
	if b.Attachments != nil {
		it.Attachments = nil
		for i, a := range *b.Attachments {
			at := "attachments." + strconv.Itoa(i)
			if strings.TrimSpace(a.Name) == "" {
				errs.add("fieldRequired", at+".name", "Attachment name is required")
			}
			if h, err := hex.DecodeString(a.Hash); err != nil || len(h) != 32 {
				errs.add("invalidValue", at+".hash", "Attachment hash must be a hex SHA-256")
			}
			if a.EncryptedKey == "" || a.EncryptedData == "" {
				errs.add("fieldRequired", at, "Attachment key and data are required")
			}
			checkValue(errs, at+".encryptedKey", a.EncryptedKey, plain)
			checkValue(errs, at+".encryptedData", a.EncryptedData, plain)
			if len(a.EncryptedData) > 16<<20 {
				errs.add("attachmentTooLarge", at, "Attachments are limited to 5 MB")
			}
			it.Attachments = append(it.Attachments, &attachment{ID: s.newID(), Name: a.Name,
				EncryptedKey: a.EncryptedKey, EncryptedData: a.EncryptedData, Hash: strings.ToLower(a.Hash)})
		}
	}
}

func (s *Server) createItemV7(w http.ResponseWriter, r *http.Request) {
	var b itemBody
	if !decodeV7(w, r, &b) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs fieldErrors
	if b.VaultID == nil || s.vaultByID(*b.VaultID) == nil {
		errs.add("vaultNotFound", "vaultId", "Vault not found")
		writeV7Errors(w, r, http.StatusBadRequest, errs)
		return
	}
	if b.Name == nil {
		errs.add("fieldRequired", "name", "Item name is required")
	}
	it := &item{ID: s.newID(), VaultID: *b.VaultID, URLs: []string{}, Tags: []string{}}
	s.applyItem(&b, it, true, &errs)
	if len(errs) > 0 {
		writeV7Errors(w, r, http.StatusBadRequest, errs)
		return
	}
	s.addItem(it)
	writeV7(w, r, http.StatusOK, s.itemJSONv7(it))
}

// patchItemV7 changes the fields sent and keeps the others. The vault is
// sent by the SDK (it encrypts with that vault's key) and must not change.
func (s *Server) patchItemV7(w http.ResponseWriter, r *http.Request) {
	var b itemBody
	if !decodeV7(w, r, &b) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	prev := s.itemByID(r.PathValue("id"))
	if prev == nil {
		writeV7Error(w, r, http.StatusNotFound, "itemNotFound", "Item not found")
		return
	}
	var errs fieldErrors
	if b.VaultID != nil && *b.VaultID != prev.VaultID {
		errs.add("invalidValue", "vaultId", "An item cannot change vault by update")
		writeV7Errors(w, r, http.StatusBadRequest, errs)
		return
	}
	if b.Name != nil && strings.TrimSpace(*b.Name) == "" {
		errs.add("fieldRequired", "name", "Item name must not be empty")
	}
	it := *prev
	s.applyItem(&b, &it, false, &errs)
	if len(errs) > 0 {
		writeV7Errors(w, r, http.StatusBadRequest, errs)
		return
	}
	*prev = it
	writeV7(w, r, http.StatusOK, s.itemJSONv7(prev))
}

// deleteItemV7 moves the item to the recycle bin (with its shortcuts gone)
// and answers the bin entry's id.
func (s *Server) deleteItemV7(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := r.PathValue("id")
	if removed := s.removeItems(func(it *item) bool { return it.ID == id }); len(removed) > 0 {
		s.bin = append(s.bin, removed...)
		writeV7(w, r, http.StatusOK, map[string]any{"binItemId": s.newID()})
		return
	}
	writeV7Error(w, r, http.StatusNotFound, "itemNotFound", "Item not found")
}

func (s *Server) createShortcutV7(w http.ResponseWriter, r *http.Request) {
	var b struct {
		VaultID      string  `json:"vaultId"`
		FolderID     *string `json:"folderId"`
		ItemID       string  `json:"itemId"`
		KeyEncrypted *string `json:"keyEncrypted"`
	}
	if !decodeV7(w, r, &b) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs fieldErrors
	it, v := s.itemByID(b.ItemID), s.vaultByID(b.VaultID)
	if it == nil {
		errs.add("itemNotFound", "itemId", "Item not found")
	}
	if v == nil {
		errs.add("vaultNotFound", "vaultId", "Vault not found")
	}
	folderID := ""
	if b.FolderID != nil {
		folderID = *b.FolderID
	}
	if v != nil {
		s.checkFolder(&errs, "folderId", v.ID, folderID)
		checkKey(&errs, "keyEncrypted", b.KeyEncrypted, v.MasterKeyEncrypted == nil)
	}
	if len(errs) > 0 {
		writeV7Errors(w, r, http.StatusBadRequest, errs)
		return
	}
	sc := &shortcut{ID: s.newID(), ItemID: it.ID, VaultID: v.ID, FolderID: folderID, KeyEncrypted: b.KeyEncrypted}
	if v.MasterKeyEncrypted == nil {
		sc.KeyEncrypted = nil
	}
	s.addShortcut(sc)
	writeV7(w, r, http.StatusOK, s.shortcutJSON(sc))
}

func (s *Server) deleteShortcutV7(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := r.PathValue("id")
	if removed := s.removeShortcuts(func(sc *shortcut) bool { return sc.ID == id }); len(removed) > 0 {
		writeV7(w, r, http.StatusOK, map[string]any{"id": id})
		return
	}
	writeV7Error(w, r, http.StatusNotFound, "shortcutNotFound", "Shortcut not found")
}
