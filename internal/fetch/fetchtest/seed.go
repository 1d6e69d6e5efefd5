// Package fetchtest holds what the provider emulators share: one seed format,
// so `injector dev`, the tests and the benchmarks can fill any emulator from
// the same data.
package fetchtest

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
)

// Entry is one secret as a person would type it into a password manager.
// Each emulator encrypts it the way that product's official client does.
type Entry struct {
	// Path is slash-separated. For Passwork the first segment is the vault;
	// for Passbolt the segments before the last are folders; PassAgent has
	// no folders, so its path is just the name.
	Path string `json:"path"`
	// Fields holds the standard fields by their provider's names: password,
	// login/username, url, description/notes, tags (comma-separated).
	Fields map[string]string `json:"fields,omitempty"`
	// Custom holds custom fields, name → value.
	Custom map[string]string `json:"custom,omitempty"`
	// TOTP is a base32 secret or an otpauth:// URI.
	TOTP string `json:"totp,omitempty"`
	// Attachments maps file name → content.
	Attachments map[string][]byte `json:"attachments,omitempty"`
	// Format picks an older storage format where the provider has
	// several: for Passbolt "v4" stores the entry as a v4 resource type in
	// cleartext (v4) folders. Empty means the current format.
	Format string `json:"format,omitempty"`
	// Shortcuts (Passwork) lists locations, "Vault" or "Vault/Folder/…",
	// where a shortcut to the entry is placed: the entry is then also
	// reachable as "Vault/Folder/…/Name".
	Shortcuts []string `json:"shortcuts,omitempty"`
}

// Seed is the dev/test data set for every provider.
type Seed struct {
	Passwork  []Entry `json:"passwork,omitempty"`
	Passbolt  []Entry `json:"passbolt,omitempty"`
	PassAgent []Entry `json:"passagent,omitempty"`
}

// LoadSeed reads a Seed from a JSON file, rejecting unknown keys so a typo in
// examples/ is caught rather than silently seeding nothing.
func LoadSeed(path string) (*Seed, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("seed: %w", err)
	}
	defer f.Close()
	s, err := ParseSeed(f)
	if err != nil {
		return nil, fmt.Errorf("seed %s: %w", path, err)
	}
	return s, nil
}

// ParseSeed reads a Seed from JSON, rejecting unknown keys.
func ParseSeed(r io.Reader) (*Seed, error) {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	var s Seed
	if err := dec.Decode(&s); err != nil {
		return nil, err
	}
	return &s, nil
}
