package passbolttest

import (
	"encoding/base32"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/injector-dev/injector/internal/crypto/pgp"
	"github.com/injector-dev/injector/internal/crypto/totp"
	"github.com/injector-dev/injector/internal/fetch/fetchtest"
)

// Resource types, in the order of the reference's slug table.
var slugs = []string{
	"password-string", "password-and-description", "totp", "password-description-totp",
	"v5-default", "v5-password-string", "v5-default-with-totp", "v5-totp-standalone",
	"v5-custom-fields", "v5-note", "v5-pin-code",
}

// Slugs returns every resource type slug the emulator serves.
func Slugs() []string { return append([]string(nil), slugs...) }

type resourceTypeRow struct {
	ID          string          `json:"id"`
	Slug        string          `json:"slug"`
	Name        string          `json:"name"`
	Description string          `json:"description"`
	Definition  json.RawMessage `json:"definition"`
	Deleted     *string         `json:"deleted"`
	Created     string          `json:"created"`
	Modified    string          `json:"modified"`

	def schema // Definition, decoded once for validating writes
}

func defaultTypes() []resourceTypeRow {
	now := time.Now().UTC().Format(time.RFC3339)
	defs := definitions()
	var out []resourceTypeRow
	for i, slug := range slugs {
		b, err := json.Marshal(defs[slug])
		if err != nil {
			panic("passbolttest: resource type definition: " + err.Error())
		}
		out = append(out, resourceTypeRow{
			ID:   fmt.Sprintf("669f8c64-%04x-4a2c-9d0e-5b2e0c1a%04x", i, i),
			Slug: slug, Name: typeNames()[slug], Description: typeNames()[slug] + ".", Created: now, Modified: now,
			Definition: b, def: defs[slug],
		})
	}
	return out
}

func (s *Server) typeID(slug string) (string, bool) {
	for _, t := range s.types {
		if t.Slug == slug {
			return t.ID, true
		}
	}
	return "", false
}

type folderRow struct {
	id, parent, name string // name: v4 folders only (v5 names are in metadata)
	v5               bool
	metadata         string // v5: armored, encrypted to the shared or the user key
	metaKeyID        string
	keyType          string
	created          time.Time
	modified         time.Time
}

type resourceRow struct {
	id, parent, typeID string
	v4                 map[string]string // v4 cleartext name/username/uri/description
	metadata           string            // v5 armored
	metaKeyID, keyType string
	secret             string // armored, encrypted to the user
	secretID           string
	created, modified  time.Time
	expired            *time.Time
}

// Custom is a custom field (v5).
type Custom struct{ Label, Value string }

// Resource is one resource to add, with the type chosen explicitly.
type Resource struct {
	// Path is "Folder/Sub/Name"; missing folders are created. When
	// ParentID is set, Path is only the name and the resource goes there.
	Path     string
	ParentID string
	// Type is a slug (see Slugs); "" means v5-default, or
	// v5-default-with-totp when TOTP is set.
	Type string
	// KeyType is "shared_key" (default) or "user_key" for v5 types.
	KeyType     string
	Username    string
	URIs        []string
	Description string
	// SecretDescription stores the description in the secret instead of
	// the metadata (v4 password-and-description always does).
	SecretDescription bool
	Password          string
	TOTP              string // base32 secret or otpauth:// URI
	PinCode           string
	Custom            []Custom
	// V4Folders creates missing folders as v4 folders (cleartext name),
	// as PlainFolders does for every resource.
	V4Folders bool
}

// Seed adds the shared dev/test entries: fields password, username, url,
// description; Custom as v5 custom fields; TOTP picks v5-default-with-totp.
// An entry with Format "v4" is stored as a Passbolt 4 client would store
// it: a v4 resource type (password-and-description, or
// password-description-totp with TOTP) with cleartext metadata, in
// cleartext (v4) folders.
func (s *Server) Seed(entries []fetchtest.Entry) error {
	for _, e := range entries {
		r := Resource{Path: e.Path, Password: e.Fields["password"], Username: e.Fields["username"],
			Description: e.Fields["description"], TOTP: e.TOTP}
		switch e.Format {
		case "":
		case "v4":
			r.Type, r.V4Folders = "password-and-description", true
			if e.TOTP != "" {
				r.Type = "password-description-totp"
			}
			if len(e.Custom) > 0 {
				return fmt.Errorf("passbolttest: seed %q: v4 resource types have no custom fields", e.Path)
			}
		default:
			return fmt.Errorf("passbolttest: seed %q: unknown format %q (want \"v4\" or none)", e.Path, e.Format)
		}
		if r.Username == "" {
			r.Username = e.Fields["login"]
		}
		if r.Description == "" {
			r.Description = e.Fields["notes"]
		}
		if u := e.Fields["url"]; u != "" {
			r.URIs = []string{u}
		}
		labels := make([]string, 0, len(e.Custom))
		for k := range e.Custom {
			labels = append(labels, k)
		}
		sort.Strings(labels)
		for _, k := range labels {
			r.Custom = append(r.Custom, Custom{Label: k, Value: e.Custom[k]})
		}
		if _, err := s.Add(r); err != nil {
			return fmt.Errorf("passbolttest: seed %q: %w", e.Path, err)
		}
	}
	return nil
}

// AddFolder adds a folder under parentID ("" = root) and returns its id.
// Duplicate sibling names are allowed, as on the real server.
func (s *Server) AddFolder(parentID, name string, v5 bool) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addFolderLocked(parentID, name, v5)
}

func (s *Server) addFolderLocked(parentID, name string, v5 bool) (string, error) {
	now := time.Now()
	f := &folderRow{id: newUUID(), parent: parentID, v5: v5, created: now, modified: now}
	if v5 {
		s.seedNames[f.id] = name // the seeder's memory, never served
	} else {
		f.name = name
	}
	if v5 {
		mk := s.metaKeys[len(s.metaKeys)-1]
		plain, _ := json.Marshal(map[string]any{"object_type": "PASSBOLT_FOLDER_METADATA", "name": name, "color": nil, "description": nil, "icon": nil})
		pub, err := mk.key.ToPublic()
		if err != nil {
			return "", err
		}
		if f.metadata, err = pgp.EncryptSign(plain, pub, s.userKey); err != nil {
			return "", err
		}
		f.metaKeyID, f.keyType = mk.id, "shared_key"
	}
	s.folders = append(s.folders, f)
	return f.id, nil
}

// ensureFolders walks names from the root, creating what is missing.
func (s *Server) ensureFolders(names []string, v5 bool) (string, error) {
	parent := ""
	for _, n := range names {
		var found *folderRow
		for _, f := range s.folders {
			if name := f.name; f.parent == parent && (name == n || f.v5 && s.seedNames[f.id] == n) {
				if found != nil {
					return "", fmt.Errorf("folder %q is ambiguous; use ParentID", n)
				}
				found = f
			}
		}
		if found == nil {
			id, err := s.addFolderLocked(parent, n, v5)
			if err != nil {
				return "", err
			}
			parent = id
			continue
		}
		parent = found.id
	}
	return parent, nil
}

// Add stores a resource and its secret and returns the resource id.
func (s *Server) Add(r Resource) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	segs := strings.FieldsFunc(r.Path, func(c rune) bool { return c == '/' })
	if len(segs) == 0 {
		return "", fmt.Errorf("passbolttest: empty path")
	}
	name := segs[len(segs)-1]
	parent := r.ParentID
	if parent == "" {
		var err error
		if parent, err = s.ensureFolders(segs[:len(segs)-1], !s.plainFolder && !r.V4Folders); err != nil {
			return "", err
		}
	}
	slug := r.Type
	if slug == "" {
		slug = "v5-default"
		if r.TOTP != "" {
			slug = "v5-default-with-totp"
		}
	}
	typeID, ok := s.typeID(slug)
	if !ok {
		return "", fmt.Errorf("passbolttest: unknown resource type %q", slug)
	}
	now := time.Now()
	if slug == "totp" && r.Description != "" {
		return "", fmt.Errorf("passbolttest: resource type totp has no description")
	}
	row := &resourceRow{id: newUUID(), secretID: newUUID(), parent: parent, typeID: typeID, created: now, modified: now}
	v5 := strings.HasPrefix(slug, "v5-")

	// The secret, shaped per the slug table.
	var secret any
	sec := map[string]any{}
	if v5 {
		sec["object_type"] = "PASSBOLT_SECRET_DATA"
	}
	descInSecret := r.SecretDescription || slug == "password-and-description" ||
		slug == "password-description-totp" || slug == "v5-note"
	if descInSecret && r.Description != "" {
		sec["description"] = r.Description
	}
	switch slug {
	case "password-string", "v5-password-string":
		secret = r.Password
	case "password-and-description", "v5-default":
		sec["password"] = r.Password
	case "totp", "v5-totp-standalone":
	case "password-description-totp", "v5-default-with-totp":
		sec["password"] = r.Password
	case "v5-pin-code":
		sec["pin_code"] = r.PinCode
	}
	if r.TOTP != "" {
		t, err := totpObject(r.TOTP)
		if err != nil {
			return "", err
		}
		sec["totp"] = t
	}
	var metaCustom []map[string]any
	if len(r.Custom) > 0 {
		var secCustom []map[string]any
		for _, c := range r.Custom {
			id := newUUID()
			metaCustom = append(metaCustom, map[string]any{"id": id, "type": "text", "metadata_key": c.Label})
			secCustom = append(secCustom, map[string]any{"id": id, "type": "text", "secret_value": c.Value})
		}
		sec["custom_fields"] = secCustom
	}
	var plainSecret []byte
	if str, ok := secret.(string); ok {
		plainSecret = []byte(str)
	} else {
		plainSecret, _ = json.Marshal(sec)
	}
	userPub, err := s.userKey.ToPublic()
	if err != nil {
		return "", err
	}
	if row.secret, err = pgp.EncryptSign(plainSecret, userPub, s.userKey); err != nil {
		return "", err
	}

	if !v5 {
		row.v4 = map[string]string{"name": name, "username": r.Username, "uri": "", "description": ""}
		if slug == "totp" {
			row.v4["username"] = ""
		}
		if len(r.URIs) > 0 {
			row.v4["uri"] = r.URIs[0]
		}
		if !descInSecret {
			row.v4["description"] = r.Description
		}
	} else {
		md := map[string]any{"object_type": "PASSBOLT_RESOURCE_METADATA", "resource_type_id": typeID, "name": name}
		if slug != "v5-totp-standalone" && slug != "v5-custom-fields" && slug != "v5-note" && slug != "v5-pin-code" {
			md["username"] = r.Username
		}
		if slug != "v5-pin-code" {
			md["uris"] = append([]string{}, r.URIs...)
		}
		if !descInSecret {
			md["description"] = r.Description
		}
		if metaCustom != nil {
			md["custom_fields"] = metaCustom
		}
		plain, _ := json.Marshal(md)
		to := userPub
		row.keyType, row.metaKeyID = "user_key", s.userKeyID
		if r.KeyType == "" || r.KeyType == "shared_key" {
			mk := s.metaKeys[len(s.metaKeys)-1]
			if to, err = mk.key.ToPublic(); err != nil {
				return "", err
			}
			row.keyType, row.metaKeyID = "shared_key", mk.id
		} else if r.KeyType != "user_key" {
			return "", fmt.Errorf("passbolttest: unknown key type %q", r.KeyType)
		}
		if row.metadata, err = pgp.EncryptSign(plain, to, s.userKey); err != nil {
			return "", err
		}
	}
	s.resources = append(s.resources, row)
	return row.id, nil
}

// totpObject turns a base32 secret or otpauth URI into Passbolt's object.
func totpObject(v string) (map[string]any, error) {
	p, err := totp.Parse(v)
	if err != nil {
		return nil, err
	}
	return map[string]any{
		"secret_key": base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(p.Secret),
		"digits":     p.Digits,
		"algorithm":  p.Algorithm,
		"period":     int(p.Period / time.Second),
	}, nil
}
