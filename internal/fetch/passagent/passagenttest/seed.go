package passagenttest

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/injector-dev/injector/internal/crypto/envelope"
	"github.com/injector-dev/injector/internal/fetch/fetchtest"
)

const userID = "00000000-0000-4000-8000-00000000e1e1"

// payload is the plaintext the V3 client encrypts (docs/passagent.md).
type payload struct {
	Username     string        `json:"username"`
	Password     string        `json:"password"`
	Notes        *string       `json:"notes"`
	Category     *string       `json:"category"`
	TOTP         string        `json:"totp,omitempty"`
	CustomFields []customField `json:"custom_fields"`
}

type customField struct {
	Name   string `json:"name"`
	Value  string `json:"value"`
	Hidden bool   `json:"hidden"`
}

// Seed stores entries as V3 records. PassAgent has no folders: Path is the
// entry name. Fields: username (or login), password, notes (or note,
// description), url, website, tags (comma-separated). Custom becomes
// custom_fields (sorted by name), TOTP the payload's totp.
func (s *Server) Seed(entries []fetchtest.Entry) error {
	for _, e := range entries {
		if _, err := s.add(e, 3); err != nil {
			return err
		}
	}
	return nil
}

// SeedLegacy stores one entry as a pre-V3 record (encryption_version 1 or
// 2): each field AES-GCM-encrypted under the vault key as {iv, ciphertext}
// JSON, no item key. It returns the record id.
func (s *Server) SeedLegacy(e fetchtest.Entry, version int) (string, error) {
	if version != 1 && version != 2 {
		return "", fmt.Errorf("passagenttest: legacy version must be 1 or 2, not %d", version)
	}
	return s.add(e, version)
}

// ID returns the id of the first live record with the given name, or "".
func (s *Server) ID(name string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range s.records {
		if r.Name == name && r.DeletedAt == nil {
			return r.ID
		}
	}
	return ""
}

// Delete soft-deletes a record as DELETE /api/passwords/{id} does.
func (s *Server) Delete(id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.deleteLocked(id) {
		return fmt.Errorf("passagenttest: no record %q", id)
	}
	return nil
}

// Tamper flips one bit in a record's encrypted_data ("data") or
// wrapped_item_key ("key"), as an attacker with database access could.
func (s *Server) Tamper(id, which string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range s.records {
		if r.ID != id || r.EncryptionVersion != 3 {
			continue
		}
		f := r.EncryptedData
		if which == "key" {
			f = r.WrappedItemKey
		}
		raw, err := envelope.DecodeBase64(*f)
		if err != nil {
			return err
		}
		raw[len(raw)-20] ^= 0x01
		*f = envelope.EncodeBase64(raw)
		return nil
	}
	return fmt.Errorf("passagenttest: no V3 record %q", id)
}

func (s *Server) add(e fetchtest.Entry, version int) (string, error) {
	name := strings.Trim(e.Path, "/")
	if name == "" {
		return "", fmt.Errorf("passagenttest: entry with empty path")
	}
	p := payload{
		Username: first(e.Fields, "username", "login"),
		Password: e.Fields["password"],
		TOTP:     e.TOTP,
	}
	if n := first(e.Fields, "notes", "note", "description"); n != "" {
		p.Notes = &n
	}
	for _, k := range slices.Sorted(maps.Keys(e.Custom)) {
		p.CustomFields = append(p.CustomFields, customField{Name: k, Value: e.Custom[k], Hidden: true})
	}
	var tags []string
	for _, t := range strings.Split(e.Fields["tags"], ",") {
		if t = strings.TrimSpace(t); t != "" {
			tags = append(tags, t)
		}
	}
	now := time.Now().UTC().Format(time.RFC3339)
	r := &Record{
		ID: "pwd_" + randHex(6), UserID: userID, Name: name,
		Website: e.Fields["website"], URL: e.Fields["url"], Tags: tags,
		EncryptionVersion: version, HasTOTP: e.TOTP != "",
		SearchTokens: envelope.SearchTokens(name), CreatedAt: now, UpdatedAt: now,
	}
	if r.Website == "" {
		r.Website = envelope.RegistrableDomain(r.URL)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if version < 3 {
		// Pre-V3: each secret field sealed under the vault key directly.
		for _, f := range []struct {
			dst **string
			v   string
		}{{&r.Username, p.Username}, {&r.Password, p.Password}, {&r.Notes, deref(p.Notes)}} {
			if f.v == "" {
				continue
			}
			v, err := legacySeal(s.vaultKey, f.v)
			if err != nil {
				return "", err
			}
			*f.dst = &v
		}
	} else {
		pt, err := json.Marshal(p)
		if err != nil {
			return "", err
		}
		seal := envelope.Seal
		if s.useKW {
			seal = envelope.SealKW
		}
		w, d, err := seal(s.vaultKey, pt)
		if err != nil {
			return "", err
		}
		r.WrappedItemKey, r.EncryptedData = &w, &d
		r.NameHash = envelope.BlindIndex(s.biKey, "name", name)
		r.UsernameHash = envelope.BlindIndex(s.biKey, "username", p.Username)
		r.DomainHash = envelope.BlindIndex(s.biKey, "domain", envelope.RegistrableDomain(firstNonEmpty(r.URL, r.Website)))
	}
	s.records = append(s.records, r)
	return r.ID, nil
}

// legacySeal is the v1/v2 field format: JSON {iv, ciphertext}, both base64,
// AES-256-GCM under the vault key with a 12-byte IV.
func legacySeal(key []byte, v string) (string, error) {
	sealed, err := envelope.Encrypt(key, []byte(v))
	if err != nil {
		return "", err
	}
	raw, _ := envelope.DecodeBase64(sealed)
	b, err := json.Marshal(map[string]string{
		"iv": envelope.EncodeBase64(raw[:12]), "ciphertext": envelope.EncodeBase64(raw[12:]),
	})
	return string(b), err
}

func (s *Server) deleteLocked(id string) bool {
	for _, r := range s.records {
		if r.ID == id && r.DeletedAt == nil {
			now := time.Now().UTC().Format(time.RFC3339)
			r.DeletedAt = &now
			s.tombstones = append(s.tombstones, Tombstone{ID: id, DeletedAt: now})
			return true
		}
	}
	return false
}

func first(m map[string]string, keys ...string) string {
	for _, k := range keys {
		if v := m[k]; v != "" {
			return v
		}
	}
	return ""
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}
