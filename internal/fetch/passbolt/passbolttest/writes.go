package passbolttest

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/injector-dev/injector/internal/crypto/pgp"
)

// Writes, as the official clients (go-passbolt, the browser extension)
// make them. The server sees only ciphertext for secrets and v5 metadata,
// so like the real one it checks what it can: the resource type exists
// and its version matches the fields sent, v4 cleartext fields match the
// type's schema, every armored message is an OpenPGP message encrypted to
// the key it claims (the user's, or the shared metadata key), folders
// exist, and the metadata type settings allow the format.

// fieldErrors is CakePHP's validation error body: field → rule → message.
type fieldErrors map[string]map[string]string

func (e fieldErrors) add(field, rule, msg string) {
	if e[field] == nil {
		e[field] = map[string]string{}
	}
	e[field][rule] = msg
}

const maxBody = 8 << 20 // a v5 note is up to 50,000 characters before encryption

// decodeBody reads a JSON object. An unparsable body is a 400, as the
// server's body parser answers it.
func decodeBody(w http.ResponseWriter, r *http.Request, out any) bool {
	data, err := io.ReadAll(io.LimitReader(r.Body, maxBody))
	if err == nil && json.Unmarshal(data, out) == nil {
		return true
	}
	write(w, r, 400, "The request data could not be parsed as JSON.", nil)
	return false
}

type secretBody struct {
	UserID string `json:"user_id"`
	Data   string `json:"data"`
}

// metadataBody is the v5 part of a resource or folder write.
type metadataBody struct {
	Metadata        *string `json:"metadata"`
	MetadataKeyID   *string `json:"metadata_key_id"`
	MetadataKeyType *string `json:"metadata_key_type"`
}

type resourceBody struct {
	Name           *string      `json:"name"`
	Username       *string      `json:"username"`
	URI            *string      `json:"uri"`
	Description    *string      `json:"description"`
	ResourceTypeID *string      `json:"resource_type_id"`
	FolderParentID *string      `json:"folder_parent_id"`
	Secrets        []secretBody `json:"secrets"`
	Expired        *string      `json:"expired"`
	metadataBody
}

func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// checkMetadata validates v5 metadata and its key reference; it returns
// the key type and id to store. The caller holds s.mu.
func (s *Server) checkMetadata(b metadataBody, errs fieldErrors) (keyType, keyID string) {
	keyType, keyID = str(b.MetadataKeyType), str(b.MetadataKeyID)
	userPub, _ := s.userKey.ToPublic()
	switch keyType {
	case "user_key":
		switch {
		case !s.keySet.PersonalKeys:
			errs.add("metadata_key_type", "isPersonalKeyAllowed", "The usage of personal keys is not allowed.")
		case keyID != s.userKeyID:
			errs.add("metadata_key_id", "isValidUserKey", "The metadata key identifier should be the user's key.")
		case !pgp.EncryptedTo(str(b.Metadata), userPub):
			errs.add("metadata", "isValidEncryptedMetadata", "The metadata should be a valid OpenPGP message encrypted with the user key.")
		}
	case "shared_key":
		mk := s.metaKeyByID(keyID)
		if mk == nil {
			errs.add("metadata_key_id", "isMetadataKeyExists", "The metadata key does not exist or has been deleted.")
			return
		}
		pub, _ := mk.key.ToPublic()
		if !pgp.EncryptedTo(str(b.Metadata), pub) {
			errs.add("metadata", "isValidEncryptedMetadata", "The metadata should be a valid OpenPGP message encrypted with the metadata key.")
		}
	default:
		errs.add("metadata_key_type", "inList", `The metadata key type should be one of "user_key", "shared_key".`)
	}
	return keyType, keyID
}

func (s *Server) metaKeyByID(id string) *metadataKey {
	for _, mk := range s.metaKeys {
		if mk.id == id {
			return mk
		}
	}
	return nil
}

func (s *Server) typeByID(id string) *resourceTypeRow {
	for i := range s.types {
		if s.types[i].ID == id && s.types[i].Deleted == nil {
			return &s.types[i]
		}
	}
	return nil
}

func (s *Server) folderByID(id string) *folderRow {
	for _, f := range s.folders {
		if f.id == id {
			return f
		}
	}
	return nil
}

func (s *Server) resourceByID(id string) *resourceRow {
	for _, res := range s.resources {
		if res.id == id {
			return res
		}
	}
	return nil
}

// applyResource checks b and writes it into row (a copy the caller commits
// only when errs stays empty). prev is the stored row on update, nil on
// create. The caller holds s.mu.
func (s *Server) applyResource(b *resourceBody, row, prev *resourceRow, errs fieldErrors) {
	typeID := row.typeID
	if b.ResourceTypeID != nil {
		typeID = *b.ResourceTypeID
	}
	typ := s.typeByID(typeID)
	if typ == nil {
		if typeID == "" {
			errs.add("resource_type_id", "_required", "A resource type identifier is required.")
		} else {
			errs.add("resource_type_id", "resourceTypeExists", "The resource type does not exist.")
		}
		return
	}
	row.typeID = typ.ID
	v5 := strings.HasPrefix(typ.Slug, "v5-")
	switch {
	case prev == nil && v5 && !s.typeSet.V5Resources:
		errs.add("resource_type_id", "isV5Allowed", "The creation of resources with encrypted metadata is disabled.")
	case prev == nil && !v5 && !s.typeSet.V4Resources:
		errs.add("resource_type_id", "isV4Allowed", "The creation of resources with cleartext metadata is disabled.")
	case prev != nil && prev.v4 != nil && v5 && !s.typeSet.Upgrade:
		errs.add("resource_type_id", "isV4ToV5UpgradeAllowed", "The upgrade of resources to encrypted metadata is disabled.")
	case prev != nil && prev.v4 == nil && !v5 && !s.typeSet.Downgrade:
		errs.add("resource_type_id", "isV5ToV4DowngradeAllowed", "The downgrade of resources to cleartext metadata is disabled.")
	}

	cleartext := map[string]*string{"name": b.Name, "username": b.Username, "uri": b.URI, "description": b.Description}
	if v5 {
		for f, v := range cleartext {
			if str(v) != "" {
				errs.add(f, "isNullOnV5", "The "+f+" should not be set in cleartext for a resource with encrypted metadata.")
			}
		}
		if str(b.Metadata) == "" {
			if prev != nil && prev.v4 == nil && b.Metadata == nil {
				return // metadata unchanged
			}
			errs.add("metadata", "_required", "The metadata is required for this resource type.")
			return
		}
		row.keyType, row.metaKeyID = s.checkMetadata(b.metadataBody, errs)
		row.metadata, row.v4 = *b.Metadata, nil
		return
	}
	if str(b.Metadata) != "" {
		errs.add("metadata", "isNullOnV4", "The metadata should not be set for a resource type with cleartext metadata.")
		return
	}
	fields := map[string]string{}
	if prev != nil && prev.v4 != nil {
		for k, v := range prev.v4 {
			fields[k] = v
		}
	}
	for f, v := range cleartext {
		if v != nil {
			fields[f] = *v
		}
	}
	doc := map[string]any{} // empty cleartext fields are stored as null
	for f, v := range fields {
		if v != "" {
			doc[f] = v
		}
	}
	if err := ValidateSchema(typ.def["resource"].(schema), doc); err != nil {
		var se *SchemaError
		errors.As(err, &se)
		errs.add(se.Field, "resourceTypeSchema", "The "+se.Field+" "+se.Reason+".")
	}
	row.v4, row.metadata, row.metaKeyID, row.keyType = fields, "", "", ""
}

// checkSecrets validates the secrets of a write: exactly one, for the
// caller (the only user who has access), encrypted to the caller's key.
func (s *Server) checkSecrets(secrets []secretBody, errs fieldErrors) string {
	if len(secrets) != 1 {
		errs.add("secrets", "hasAtMostOneSecret", "One secret is required, for each user who has access.")
		return ""
	}
	sec := secrets[0]
	userPub, _ := s.userKey.ToPublic()
	switch {
	case sec.UserID != "" && sec.UserID != s.userID:
		errs.add("secrets", "secretsProvidedForUsersWhoHaveAccess", "The secrets should be provided for the users who have access.")
	case !pgp.EncryptedTo(sec.Data, userPub):
		errs.add("secrets", "isValidEncryptedMessage", "The secret should be a valid OpenPGP message encrypted for its user.")
	}
	return sec.Data
}

func (s *Server) checkParent(id string, errs fieldErrors) string {
	if id != "" && s.folderByID(id) == nil {
		errs.add("folder_parent_id", "folderExists", "The folder parent does not exist.")
	}
	return id
}

func parseExpiry(p *string, errs fieldErrors) *time.Time {
	if str(p) == "" {
		return nil
	}
	t, err := time.Parse(time.RFC3339, *p)
	if err != nil {
		errs.add("expired", "dateTime", "The expiry date should be a valid date.")
		return nil
	}
	return &t
}

// createResource serves POST /resources.json.
func (s *Server) createResource(w http.ResponseWriter, r *http.Request) {
	var b resourceBody
	if !decodeBody(w, r, &b) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	row := &resourceRow{id: newUUID(), secretID: newUUID(), created: now, modified: now}
	errs := fieldErrors{}
	s.applyResource(&b, row, nil, errs)
	row.parent = s.checkParent(str(b.FolderParentID), errs)
	row.secret = s.checkSecrets(b.Secrets, errs)
	row.expired = parseExpiry(b.Expired, errs)
	if len(errs) > 0 {
		write(w, r, 400, "Could not validate resource data.", errs)
		return
	}
	s.resources = append(s.resources, row)
	out := s.resourceJSON(row, false)
	out["secrets"] = []any{s.secretJSON(row)}
	write(w, r, 200, "The resource has been added successfully.", out)
}

// updateResource serves PUT /resources/{id}.json: cleartext or metadata,
// type and secrets; fields left out keep their values.
func (s *Server) updateResource(w http.ResponseWriter, r *http.Request, id string) {
	var b resourceBody
	if !decodeBody(w, r, &b) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	prev := s.resourceByID(id)
	if prev == nil {
		write(w, r, 404, "The resource does not exist.", nil)
		return
	}
	row := *prev
	errs := fieldErrors{}
	s.applyResource(&b, &row, prev, errs)
	if b.Secrets != nil {
		row.secret = s.checkSecrets(b.Secrets, errs)
	}
	if b.Expired != nil {
		row.expired = parseExpiry(b.Expired, errs)
	}
	if len(errs) > 0 {
		write(w, r, 400, "Could not validate resource data.", errs)
		return
	}
	row.modified = time.Now()
	*prev = row
	write(w, r, 200, "The resource has been updated successfully.", s.resourceJSON(prev, false))
}

func (s *Server) deleteResource(w http.ResponseWriter, r *http.Request, id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, res := range s.resources {
		if res.id == id {
			s.resources = append(s.resources[:i], s.resources[i+1:]...)
			write(w, r, 200, "The resource has been deleted successfully.", nil)
			return
		}
	}
	write(w, r, 404, "The resource does not exist.", nil)
}

type folderBody struct {
	Name           *string `json:"name"`
	FolderParentID *string `json:"folder_parent_id"`
	metadataBody
}

// applyFolder checks a folder write into f; create is true for POST.
func (s *Server) applyFolder(b *folderBody, f *folderRow, create bool, errs fieldErrors) {
	v5 := str(b.Metadata) != "" || (!create && f.v5 && b.Name == nil)
	switch {
	case create && v5 && !s.typeSet.V5Folders:
		errs.add("metadata", "isV5Allowed", "The creation of folders with encrypted metadata is disabled.")
	case create && !v5 && !s.typeSet.V4Folders:
		errs.add("name", "isV4Allowed", "The creation of folders with cleartext metadata is disabled.")
	case !create && f.v5 && !v5 && !s.typeSet.Downgrade:
		errs.add("name", "isV5ToV4DowngradeAllowed", "The downgrade of folders to cleartext metadata is disabled.")
	case !create && !f.v5 && v5 && !s.typeSet.Upgrade:
		errs.add("metadata", "isV4ToV5UpgradeAllowed", "The upgrade of folders to encrypted metadata is disabled.")
	}
	if v5 {
		if str(b.Name) != "" {
			errs.add("name", "isNullOnV5", "The name should not be set in cleartext for a folder with encrypted metadata.")
		}
		if b.Metadata == nil {
			return // unchanged
		}
		f.keyType, f.metaKeyID = s.checkMetadata(b.metadataBody, errs)
		f.v5, f.metadata, f.name = true, *b.Metadata, ""
		return
	}
	name := str(b.Name)
	switch n := len([]rune(name)); {
	case n == 0:
		errs.add("name", "_empty", "The name should not be empty.")
	case n > 256:
		errs.add("name", "maxLength", "The name length should be maximum 256 characters.")
	}
	f.v5, f.name, f.metadata, f.metaKeyID, f.keyType = false, name, "", "", ""
}

func (s *Server) createFolder(w http.ResponseWriter, r *http.Request) {
	var b folderBody
	if !decodeBody(w, r, &b) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	f := &folderRow{id: newUUID(), created: now, modified: now}
	errs := fieldErrors{}
	s.applyFolder(&b, f, true, errs)
	f.parent = s.checkParent(str(b.FolderParentID), errs)
	if len(errs) > 0 {
		write(w, r, 400, "Could not validate folder data.", errs)
		return
	}
	s.folders = append(s.folders, f)
	write(w, r, 200, "The folder has been added successfully.", s.folderJSON(f))
}

func (s *Server) updateFolder(w http.ResponseWriter, r *http.Request, id string) {
	var b folderBody
	if !decodeBody(w, r, &b) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	prev := s.folderByID(id)
	if prev == nil {
		write(w, r, 404, "The folder does not exist.", nil)
		return
	}
	f := *prev
	errs := fieldErrors{}
	s.applyFolder(&b, &f, false, errs)
	if len(errs) > 0 {
		write(w, r, 400, "Could not validate folder data.", errs)
		return
	}
	f.modified = time.Now()
	*prev = f
	write(w, r, 200, "The folder has been updated successfully.", s.folderJSON(prev))
}

// deleteFolder serves DELETE /folders/{id}.json. With cascade=1 the
// folder's content goes too; without, it moves up to the folder's parent.
func (s *Server) deleteFolder(w http.ResponseWriter, r *http.Request, id string) {
	cascade := flag(r.URL.Query(), "cascade")
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.folderByID(id)
	if f == nil {
		write(w, r, 404, "The folder does not exist.", nil)
		return
	}
	gone := map[string]bool{id: true}
	if cascade {
		for changed := true; changed; {
			changed = false
			for _, c := range s.folders {
				if gone[c.parent] && !gone[c.id] {
					gone[c.id], changed = true, true
				}
			}
		}
	}
	keptF := s.folders[:0]
	for _, c := range s.folders {
		switch {
		case gone[c.id]:
		case c.parent == id:
			c.parent = f.parent
			keptF = append(keptF, c)
		default:
			keptF = append(keptF, c)
		}
	}
	s.folders = keptF
	keptR := s.resources[:0]
	for _, res := range s.resources {
		switch {
		case cascade && gone[res.parent]:
		case res.parent == id:
			res.parent = f.parent
			keptR = append(keptR, res)
		default:
			keptR = append(keptR, res)
		}
	}
	s.resources = keptR
	write(w, r, 200, "The folder has been deleted successfully.", nil)
}

// move serves PUT /move/{resource|folder}/{id}.json {"folder_parent_id"}.
func (s *Server) move(w http.ResponseWriter, r *http.Request, kind, id string) {
	var b struct {
		FolderParentID *string `json:"folder_parent_id"`
	}
	if !decodeBody(w, r, &b) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	to := str(b.FolderParentID)
	errs := fieldErrors{}
	s.checkParent(to, errs)
	var set func()
	switch kind {
	case "resource":
		res := s.resourceByID(id)
		if res == nil {
			write(w, r, 404, "The resource does not exist.", nil)
			return
		}
		set = func() { res.parent, res.modified = to, time.Now() }
	default:
		f := s.folderByID(id)
		if f == nil {
			write(w, r, 404, "The folder does not exist.", nil)
			return
		}
		for p := to; p != ""; {
			if p == id {
				errs.add("folder_parent_id", "noCycle", "The folder cannot be moved into itself or one of its children.")
				break
			}
			pf := s.folderByID(p)
			if pf == nil {
				break
			}
			p = pf.parent
		}
		set = func() { f.parent, f.modified = to, time.Now() }
	}
	if len(errs) > 0 {
		write(w, r, 400, "Could not validate move data.", errs)
		return
	}
	set()
	write(w, r, 200, "The "+kind+" has been moved successfully.", nil)
}

// share serves PUT /share/{resource|folder}/{id}.json and its simulation.
// The emulator has one user, the owner of everything: a share that
// changes nothing is accepted, one naming anybody else is refused as the
// server refuses an unknown user or group.
func (s *Server) share(w http.ResponseWriter, r *http.Request, kind, id string, simulate bool) {
	var b struct {
		Permissions []struct {
			ID            string `json:"id"`
			ARO           string `json:"aro"`
			AROForeignKey string `json:"aro_foreign_key"`
			Type          int    `json:"type"`
			Delete        bool   `json:"delete"`
		} `json:"permissions"`
		Secrets []secretBody `json:"secrets"`
	}
	if !decodeBody(w, r, &b) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	exists := (kind == "resource" && s.resourceByID(id) != nil) || (kind == "folder" && s.folderByID(id) != nil)
	if !exists {
		write(w, r, 404, "The "+kind+" does not exist.", nil)
		return
	}
	errs := fieldErrors{}
	for _, p := range b.Permissions {
		switch {
		case p.ARO != "User" || p.AROForeignKey != s.userID:
			errs.add("permissions", "aroExists", "The user or group does not exist.")
		case p.Delete || (p.Type != 0 && p.Type != 15):
			errs.add("permissions", "atLeastOneOwner", "At least one owner is required.")
		}
	}
	if len(b.Secrets) > 0 {
		s.checkSecrets(b.Secrets, errs)
	}
	if len(errs) > 0 {
		write(w, r, 400, "The shared "+kind+" validation failed.", errs)
		return
	}
	if simulate {
		write(w, r, 200, "", map[string]any{"changes": map[string]any{"added": []any{}, "removed": []any{}}})
		return
	}
	write(w, r, 200, "The operation was successful.", nil)
}

type sessionKeysRow struct {
	id, data          string
	created, modified time.Time
}

func (s *Server) sessionKeysJSON(k *sessionKeysRow) map[string]any {
	return map[string]any{"id": k.id, "user_id": s.userID, "data": k.data,
		"created": k.created.UTC().Format(time.RFC3339), "modified": k.modified.UTC().Format(time.RFC3339)}
}

// sessionKeys serves /metadata/session-keys.json (GET, POST) and
// /metadata/session-keys/{id}.json (PUT, DELETE). A bundle is the user's
// cache of metadata session keys, encrypted to the user; an update must
// name the modification time it read, so two clients do not overwrite
// each other's bundle.
func (s *Server) sessionKeysRoute(w http.ResponseWriter, r *http.Request, id string) {
	var b struct {
		Data     string `json:"data"`
		Modified string `json:"modified"`
	}
	if r.Method == http.MethodPost || r.Method == http.MethodPut {
		if !decodeBody(w, r, &b) {
			return
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	userPub, _ := s.userKey.ToPublic()
	var row *sessionKeysRow
	at := -1
	for i, k := range s.sessionKeys {
		if k.id == id {
			row, at = k, i
		}
	}
	if id != "" && row == nil {
		write(w, r, 404, "The session keys bundle does not exist.", nil)
		return
	}
	errs := fieldErrors{}
	if (r.Method == http.MethodPost || r.Method == http.MethodPut) && !pgp.EncryptedTo(b.Data, userPub) {
		errs.add("data", "isValidEncryptedMessage", "The data should be a valid OpenPGP message encrypted for the user.")
	}
	switch r.Method {
	case http.MethodGet:
		out := []any{}
		for _, k := range s.sessionKeys {
			out = append(out, s.sessionKeysJSON(k))
		}
		write(w, r, 200, "", out)
	case http.MethodPost:
		if len(errs) > 0 {
			write(w, r, 400, "Could not validate the session keys data.", errs)
			return
		}
		now := time.Now().Truncate(time.Second)
		k := &sessionKeysRow{id: newUUID(), data: b.Data, created: now, modified: now}
		s.sessionKeys = append(s.sessionKeys, k)
		write(w, r, 200, "", s.sessionKeysJSON(k))
	case http.MethodPut:
		if m, err := time.Parse(time.RFC3339, b.Modified); err != nil || !m.Equal(row.modified) {
			write(w, r, 409, "The session keys bundle has been modified since it was read.", nil)
			return
		}
		if len(errs) > 0 {
			write(w, r, 400, "Could not validate the session keys data.", errs)
			return
		}
		// Seconds are all the client echoes back: the new time must
		// differ from the old one even within the same second.
		next := time.Now().Truncate(time.Second)
		if !next.After(row.modified) {
			next = row.modified.Add(time.Second)
		}
		row.data, row.modified = b.Data, next
		write(w, r, 200, "", s.sessionKeysJSON(row))
	case http.MethodDelete:
		s.sessionKeys = append(s.sessionKeys[:at], s.sessionKeys[at+1:]...)
		write(w, r, 200, "", nil)
	}
}
