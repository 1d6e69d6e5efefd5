package passbolt

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/injector-dev/injector/internal/crypto/totp"
	"github.com/injector-dev/injector/internal/fetch"
)

// Standard field names a template can ask for. Anything else is looked up
// as a custom field label.
const (
	fieldPassword    = "password"
	fieldUsername    = "username"
	fieldURI         = "uri"
	fieldURIs        = "uris"
	fieldName        = "name"
	fieldDescription = "description"
	fieldTOTP        = "totp"
	fieldPinCode     = "pin_code"
	fieldNote        = "note"
)

// typeFields lists the standard fields each resource type has (from the
// server's slug definitions). A field of the type that is empty resolves
// to ""; a field the type does not have is "not found".
var typeFields = sync.OnceValue(func() map[string][]string {
	return map[string][]string{
		"password-string":           {fieldName, fieldUsername, fieldURI, fieldURIs, fieldDescription, fieldPassword},
		"password-and-description":  {fieldName, fieldUsername, fieldURI, fieldURIs, fieldDescription, fieldPassword},
		"totp":                      {fieldName, fieldURI, fieldURIs, fieldTOTP}, // no description: not in its schema
		"password-description-totp": {fieldName, fieldUsername, fieldURI, fieldURIs, fieldDescription, fieldPassword, fieldTOTP},
		"v5-default":                {fieldName, fieldUsername, fieldURI, fieldURIs, fieldDescription, fieldPassword},
		"v5-password-string":        {fieldName, fieldUsername, fieldURI, fieldURIs, fieldDescription, fieldPassword},
		"v5-default-with-totp":      {fieldName, fieldUsername, fieldURI, fieldURIs, fieldDescription, fieldPassword, fieldTOTP},
		"v5-totp-standalone":        {fieldName, fieldURI, fieldURIs, fieldDescription, fieldTOTP},
		"v5-custom-fields":          {fieldName, fieldURI, fieldURIs, fieldDescription},
		"v5-note":                   {fieldName, fieldURI, fieldURIs, fieldDescription, fieldNote},
		"v5-pin-code":               {fieldName, fieldDescription, fieldPinCode},
	}
})

// unknownTypeFields is used for a slug this client does not know yet.
var unknownTypeFields = []string{fieldName, fieldUsername, fieldURI, fieldURIs, fieldDescription, fieldPassword, fieldTOTP}

// customLabel is a custom field as stored in v5 metadata.
type customLabel struct {
	ID    string          `json:"id"`
	Label string          `json:"metadata_key"`
	Value json.RawMessage `json:"metadata_value"`
}

// customValue is a custom field as stored in the secret.
type customValue struct {
	ID    string          `json:"id"`
	Label string          `json:"secret_key"`
	Value json.RawMessage `json:"secret_value"`
}

// secretJSON is every decrypted secret shape of §2.3 at once.
type secretJSON struct {
	Password     *string       `json:"password"`
	Description  string        `json:"description"`
	TOTP         *totpSecret   `json:"totp"`
	CustomFields []customValue `json:"custom_fields"`
	PinCode      string        `json:"pin_code"`
}

// totpSecret is Passbolt's TOTP object.
type totpSecret struct {
	SecretKey string          `json:"secret_key"`
	Digits    json.RawMessage `json:"digits"`
	Algorithm string          `json:"algorithm"`
	Period    json.RawMessage `json:"period"`
}

// needsSecret says whether field can only be answered from the secret.
// Metadata fields never cost a secret fetch (and an audit-log entry).
func needsSecret(field string, r *resource) bool {
	switch field {
	case fieldName, fieldUsername, fieldURI, fieldURIs:
		return false
	case fieldDescription:
		return r.description == ""
	}
	return true
}

// extract picks one field of a resource. Errors name fields, never values.
func extract(r *resource, typ resourceType, sec *secretResult, field, path string, now time.Time) (string, error) {
	std, known := typeFields()[typ.slug]
	if !known {
		std = unknownTypeFields
	}
	has := func(f string) bool {
		for _, s := range std {
			if s == f {
				return true
			}
		}
		return false
	}
	s, raw, secretOK, err := parseSecret(r, &typ, sec, known)
	if err != nil {
		return "", err
	}

	if has(field) {
		switch field {
		case fieldName:
			return r.name, nil
		case fieldUsername:
			return r.username, nil
		case fieldURI:
			if len(r.uris) > 0 {
				return r.uris[0], nil
			}
			return "", nil
		case fieldURIs:
			return strings.Join(r.uris, ","), nil
		case fieldDescription, fieldNote:
			if r.description != "" || !secretOK {
				return r.description, nil
			}
			return s.Description, nil
		case fieldPassword:
			if typ.secretString {
				return raw, nil
			}
			if s.Password != nil {
				return *s.Password, nil
			}
			if known {
				return "", nil
			}
		case fieldTOTP:
			if s.TOTP != nil {
				return totpCode(s.TOTP, now)
			}
			if known {
				return "", fmt.Errorf("resource %s has no TOTP data in its secret", r.id)
			}
		case fieldPinCode:
			return s.PinCode, nil
		}
	}

	// Custom fields: label from metadata (or the secret), value from the
	// secret (or the metadata), joined on id.
	order, labels, values := customFields(r, s)
	var hits []string
	available := append([]string(nil), std...)
	for _, id := range order {
		if labels[id] == field {
			hits = append(hits, id)
		}
		if labels[id] != "" {
			available = append(available, labels[id])
		}
	}
	switch len(hits) {
	case 1:
		return scalar(values[hits[0]])
	case 0:
		return "", &fetch.NotFoundError{Kind: "field", Name: field, Within: fmt.Sprintf("resource %q", path), Nearby: available}
	}
	return "", &fetch.AmbiguousError{Kind: "custom field", Name: field, Candidates: hits}
}

// parseSecret decodes a resource's decrypted secret: the JSON of its type,
// or raw, the whole secret, for string-typed secrets (typ is updated when
// an unknown type turns out to hold one). secretOK is false when no
// secret was fetched.
func parseSecret(r *resource, typ *resourceType, sec *secretResult, known bool) (s secretJSON, raw string, secretOK bool, err error) {
	if sec == nil {
		return s, "", false, nil
	}
	if sec.err != nil {
		return s, "", false, sec.err
	}
	if typ.secretString {
		raw = string(sec.plain)
	} else if parsed, ok := sec.json(); ok {
		s = *parsed
	} else {
		if known {
			return s, "", false, fmt.Errorf("secret of resource %s is not the JSON its type %q requires", r.id, typ.slug)
		}
		raw = string(sec.plain) // unknown type: treat a non-JSON secret as the password
		typ.secretString = true
	}
	return s, raw, true, nil
}

// customFields joins a resource's custom fields: label from metadata (or
// the secret), value from the secret (or the metadata), on id, in order.
func customFields(r *resource, s secretJSON) (order []string, labels map[string]string, values map[string]json.RawMessage) {
	labels, values = map[string]string{}, map[string]json.RawMessage{}
	for _, m := range r.custom {
		labels[m.ID] = m.Label
		values[m.ID] = m.Value
		order = append(order, m.ID)
	}
	for _, v := range s.CustomFields {
		if _, ok := labels[v.ID]; !ok {
			labels[v.ID] = v.Label
			order = append(order, v.ID)
		}
		if len(v.Value) > 0 {
			values[v.ID] = v.Value
		}
	}
	return order, labels, values
}

// entryOf is a resource as a selection lists it: its password, username,
// uri and description where its type has them, and its custom fields (a
// TOTP secret is not listed: its code is what a template asks for).
func entryOf(r *resource, typ resourceType, sec *secretResult, path string, now time.Time) (fetch.Entry, error) {
	e := fetch.Entry{ID: r.id, Name: r.name, Path: path}
	std, known := typeFields()[typ.slug]
	if !known {
		std = unknownTypeFields
	}
	for _, f := range []string{fieldPassword, fieldUsername, fieldURI, fieldDescription} {
		if !slices.Contains(std, f) {
			continue
		}
		v, err := extract(r, typ, sec, f, path, now)
		if err != nil {
			return e, err
		}
		e.Fields = append(e.Fields, fetch.Field{Name: f, Value: v})
	}
	s, _, _, err := parseSecret(r, &typ, sec, known)
	if err != nil {
		return e, err
	}
	order, labels, values := customFields(r, s)
	for _, id := range order {
		if labels[id] == "" {
			continue
		}
		v, err := scalar(values[id])
		if err != nil {
			return e, fmt.Errorf("custom field %q: %w", labels[id], err)
		}
		e.Fields = append(e.Fields, fetch.Field{Name: labels[id], Value: v, Custom: true})
	}
	return e, nil
}

// scalar renders a custom field value (string, number, boolean or null).
func scalar(v json.RawMessage) (string, error) {
	if len(v) == 0 || string(v) == "null" {
		return "", nil
	}
	var s string
	if json.Unmarshal(v, &s) == nil {
		return s, nil
	}
	var n json.Number
	if json.Unmarshal(v, &n) == nil {
		return n.String(), nil
	}
	var b bool
	if json.Unmarshal(v, &b) == nil {
		return strconv.FormatBool(b), nil
	}
	return "", errors.New("custom field value is not a string, number or boolean")
}

// totpCode computes the current code from Passbolt's TOTP object.
func totpCode(t *totpSecret, now time.Time) (string, error) {
	key, err := totp.DecodeSecret(t.SecretKey)
	if err != nil {
		return "", err
	}
	p := totp.Params{Secret: key, Algorithm: strings.ToUpper(t.Algorithm), Digits: 6, Period: 30 * time.Second}
	if p.Algorithm == "" {
		p.Algorithm = "SHA1"
	}
	if n, ok := jsonInt(t.Digits); ok {
		p.Digits = n
	}
	if n, ok := jsonInt(t.Period); ok && n > 0 {
		p.Period = time.Duration(n) * time.Second
	}
	if p.Digits < 6 || p.Digits > 10 {
		return "", fmt.Errorf("totp: digits must be 6 to 10, got %d", p.Digits)
	}
	return p.Code(now)
}

// jsonInt reads a number that clients store either as 6 or as "6".
func jsonInt(v json.RawMessage) (int, bool) {
	var n int
	if json.Unmarshal(v, &n) == nil {
		return n, true
	}
	var s string
	if json.Unmarshal(v, &s) == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(s)); err == nil {
			return n, true
		}
	}
	return 0, false
}
