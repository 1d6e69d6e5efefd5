package passbolttest

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/injector-dev/injector/internal/crypto/pgp"
)

// TestValidateSchema covers each keyword the definitions use.
func TestValidateSchema(t *testing.T) {
	defs := definitions()
	v5 := defs["v5-default"]["resource"].(schema)
	pin := defs["v5-pin-code"]["secret"].(schema)
	totp := defs["totp"]["secret"].(schema)
	quirk := defs["password-string"]["resource"].(schema)
	tests := []struct {
		name  string
		s     schema
		value string
		field string // "" = valid
	}{
		{"v5 minimal", v5, `{"name":"n"}`, ""},
		{"required", v5, `{"username":"u"}`, "name"},
		{"type", v5, `{"name":5}`, "name"},
		{"maxLength counts characters", v5, `{"name":"` + strings.Repeat("é", 255) + `"}`, ""},
		{"maxLength", v5, `{"name":"` + strings.Repeat("é", 256) + `"}`, "name"},
		{"anyOf null", v5, `{"name":"n","username":null}`, ""},
		{"anyOf neither", v5, `{"name":"n","username":7}`, "username"},
		{"items", v5, `{"name":"n","uris":["a",null,7]}`, "uris[2]"},
		{"maxItems", v5, `{"name":"n","uris":[` + strings.TrimSuffix(strings.Repeat(`"u",`, 33), ",") + `]}`, "uris"},
		{"enum", v5, `{"name":"n","custom_fields":[{"id":"x","type":"date"}]}`, "custom_fields[0].type"},
		{"pattern", v5, `{"name":"n","icon":{"background_color":"red"}}`, "icon.background_color"},
		{"integer", v5, `{"name":"n","icon":{"value":1.5}}`, "icon.value"},
		{"unlisted properties pass", v5, `{"name":"n","object_type":"PASSBOLT_RESOURCE_METADATA","extra":1}`, ""},
		{"pin pattern", pin, `{"object_type":"PASSBOLT_SECRET_DATA","pin_code":"12a4"}`, "pin_code"},
		{"pin minLength", pin, `{"object_type":"PASSBOLT_SECRET_DATA","pin_code":"123"}`, "pin_code"},
		{"exclusiveMaximum", totp, `{"totp":{"secret_key":"K","digits":9,"algorithm":"SHA1"}}`, "totp.digits"},
		{"minimum", totp, `{"totp":{"secret_key":"K","digits":5,"algorithm":"SHA1"}}`, "totp.digits"},
		{"nested required", totp, `{"totp":{"secret_key":"K","digits":6}}`, "totp.algorithm"},
		{"type null constrains nothing", quirk, `{"name":"n","username":12}`, ""},
	}
	for _, tt := range tests {
		var v any
		if err := json.Unmarshal([]byte(tt.value), &v); err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		err := ValidateSchema(tt.s, v)
		se, _ := err.(*SchemaError)
		switch {
		case tt.field == "" && err != nil:
			t.Errorf("%s: %v; want valid", tt.name, err)
		case tt.field != "" && (se == nil || se.Field != tt.field):
			t.Errorf("%s: %v; want an error on %q", tt.name, err, tt.field)
		}
	}
}

// TestSeededDataMatchesSchemas decrypts what Add stores for every type and
// checks it against the definition the emulator serves, so clients that
// validate (go-passbolt does) accept the seed.
func TestSeededDataMatchesSchemas(t *testing.T) {
	s, err := New()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	custom := []Custom{{Label: "k", Value: "v"}}
	for _, slug := range Slugs() {
		r := Resource{Path: "f/" + slug, Type: slug, Username: "u", URIs: []string{"https://x"}, Description: "d",
			Password: "p", TOTP: "JBSWY3DPEHPK3PXP", PinCode: "1234", Custom: custom}
		switch slug {
		case "totp":
			r.Description = ""
		case "v5-pin-code":
			r.KeyType = "user_key"
		}
		if _, err := s.Add(r); err != nil {
			t.Fatalf("%s: %v", slug, err)
		}
	}
	defs := definitions()
	userPub, _ := s.userKey.ToPublic()
	for _, row := range s.resources {
		var slug string
		for _, ty := range s.types {
			if ty.ID == row.typeID {
				slug = ty.Slug
			}
		}
		def := defs[slug]
		plain, err := pgp.Decrypt(row.secret, s.userKey, userPub)
		if err != nil {
			t.Fatalf("%s: secret: %v", slug, err)
		}
		var sec any = string(plain)
		if def["secret"].(schema)["type"] == "object" {
			if err := json.Unmarshal(plain, &sec); err != nil {
				t.Fatalf("%s: secret is not JSON", slug)
			}
		}
		if err := ValidateSchema(def["secret"].(schema), sec); err != nil {
			t.Errorf("%s: secret: %v", slug, err)
		}
		var meta any
		if row.v4 != nil {
			doc := map[string]any{}
			for k, v := range row.v4 {
				if v != "" {
					doc[k] = v
				}
			}
			meta = doc
		} else {
			key := s.userKey
			if row.keyType == "shared_key" {
				key = s.metaKeyByID(row.metaKeyID).key
			}
			b, err := pgp.Decrypt(row.metadata, key, userPub)
			if err != nil || json.Unmarshal(b, &meta) != nil {
				t.Fatalf("%s: metadata: %v", slug, err)
			}
		}
		if err := ValidateSchema(def["resource"].(schema), meta); err != nil {
			t.Errorf("%s: metadata: %v", slug, err)
		}
	}
}
