package passbolttest

import (
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"sync"
	"unicode/utf8"
)

// Resource type definitions as the real server serves them from
// /resource-types.json: {"resource": <schema of the cleartext (v4) or
// metadata (v5) fields>, "secret": <schema of the decrypted secret>}.
// Clients (go-passbolt among them) validate what they read and write
// against these, so placeholders would hide mismatches.

type schema = map[string]any

func strMax(n int) schema { return schema{"type": "string", "maxLength": n} }

// orNull is the server's way of writing a nullable field.
func orNull(s schema) schema { return schema{"anyOf": []any{s, schema{"type": "null"}}} }

func object(required []string, props schema) schema {
	if required == nil {
		required = []string{}
	}
	return schema{"type": "object", "required": required, "properties": props}
}

func totpSchema() schema {
	return object([]string{"secret_key", "digits", "algorithm"}, schema{
		"algorithm":  schema{"type": "string", "minLength": 4, "maxLength": 6},
		"secret_key": strMax(1024),
		"digits":     schema{"type": "number", "minimum": 6, "exclusiveMaximum": 9},
		"period":     schema{"type": "number"},
	})
}

func customFieldsSchema(keyName, valueName string) schema {
	return schema{"type": "array", "maxItems": 128, "items": object([]string{"id", "type"}, schema{
		"id":      schema{"type": "string", "format": "uuid"},
		"type":    schema{"type": "string", "enum": []any{"text", "password", "boolean", "number", "uri"}},
		keyName:   orNull(strMax(255)),
		valueName: schema{"anyOf": []any{strMax(20000), schema{"type": "number"}, schema{"type": "boolean"}, schema{"type": "null"}}},
	})}
}

// v5 metadata properties, shared by the v5 types.
func v5Meta(required []string, fields ...string) schema {
	all := schema{
		"name":          strMax(255),
		"username":      orNull(strMax(255)),
		"uris":          schema{"type": "array", "maxItems": 32, "items": orNull(strMax(1024))},
		"description":   orNull(strMax(10000)),
		"custom_fields": customFieldsSchema("metadata_key", "metadata_value"),
		"icon": object(nil, schema{
			"type":             schema{"type": "string", "enum": []any{"keepass-icon-set", "passbolt-icon-set"}},
			"value":            schema{"type": "integer", "minimum": 0},
			"background_color": orNull(schema{"type": "string", "pattern": `^#(?:[0-9A-Fa-f]{6}|[0-9A-Fa-f]{8})$`}),
		}),
	}
	props := schema{}
	for _, f := range fields {
		props[f] = all[f]
	}
	return object(required, props)
}

func v5Secret(required []string, fields ...string) schema {
	all := schema{
		"object_type":   schema{"type": "string", "enum": []any{"PASSBOLT_SECRET_DATA"}},
		"password":      strMax(4096),
		"description":   orNull(strMax(50000)),
		"totp":          totpSchema(),
		"custom_fields": customFieldsSchema("secret_key", "secret_value"),
		"pin_code":      schema{"type": "string", "minLength": 4, "maxLength": 12, "pattern": `^\d+$`},
	}
	props := schema{}
	for _, f := range fields {
		props[f] = all[f]
	}
	return object(required, props)
}

// definitions maps each slug to its definition. The v4 schemas keep the
// server's quirks: password-string's nullable username is written with a
// JSON null type ({"type": null}), as PHP's json_encode renders it.
func definitions() map[string]schema {
	name := strMax(255)
	username := orNull(strMax(255))
	uri := orNull(strMax(1024))
	v4desc := orNull(strMax(10000))
	return map[string]schema{
		"password-string": {
			"resource": object([]string{"name"}, schema{
				"name":        name,
				"username":    schema{"anyOf": []any{strMax(255), schema{"type": nil}}},
				"uri":         uri,
				"description": v4desc,
			}),
			"secret": strMax(4096),
		},
		"password-and-description": {
			"resource": object([]string{"name"}, schema{"name": name, "username": username, "uri": uri}),
			"secret":   object([]string{"password"}, schema{"password": strMax(4096), "description": v4desc}),
		},
		"totp": {
			"resource": object([]string{"name"}, schema{"name": name, "uri": uri}),
			"secret":   object([]string{"totp"}, schema{"totp": totpSchema()}),
		},
		"password-description-totp": {
			"resource": object([]string{"name"}, schema{"name": name, "username": username, "uri": uri}),
			"secret": object([]string{"password", "totp"}, schema{
				"password": strMax(4096), "description": v4desc, "totp": totpSchema(),
			}),
		},
		"v5-default": {
			"resource": v5Meta([]string{"name"}, "name", "username", "uris", "description", "icon", "custom_fields"),
			"secret":   v5Secret([]string{"password"}, "object_type", "password", "description", "custom_fields"),
		},
		"v5-password-string": {
			"resource": v5Meta([]string{"name"}, "name", "username", "uris", "description", "icon"),
			"secret":   strMax(4096),
		},
		"v5-default-with-totp": {
			"resource": v5Meta([]string{"name"}, "name", "username", "uris", "description", "icon", "custom_fields"),
			"secret":   v5Secret([]string{"password", "totp"}, "object_type", "password", "description", "totp", "custom_fields"),
		},
		"v5-totp-standalone": {
			"resource": v5Meta([]string{"name"}, "name", "uris", "description", "icon"),
			"secret":   v5Secret([]string{"totp"}, "object_type", "totp"),
		},
		"v5-custom-fields": {
			"resource": v5Meta([]string{"name", "custom_fields"}, "name", "uris", "description", "icon", "custom_fields"),
			"secret":   v5Secret([]string{"object_type", "custom_fields"}, "object_type", "custom_fields"),
		},
		"v5-note": {
			"resource": v5Meta([]string{"name"}, "name", "uris", "description", "icon"),
			"secret":   v5Secret([]string{"description", "object_type"}, "object_type", "description"),
		},
		"v5-pin-code": {
			"resource": v5Meta([]string{"name"}, "name", "description", "icon"),
			"secret":   v5Secret([]string{"pin_code", "object_type"}, "object_type", "pin_code", "description"),
		},
	}
}

// typeNames are the human names the server gives the types.
var typeNames = sync.OnceValue(func() map[string]string {
	return map[string]string{
		"password-string":           "Simple password",
		"password-and-description":  "Password with description",
		"totp":                      "Standalone TOTP",
		"password-description-totp": "Password, Description and TOTP",
		"v5-default":                "Default resource type",
		"v5-password-string":        "Simple password (deprecated)",
		"v5-default-with-totp":      "Default resource type with TOTP",
		"v5-totp-standalone":        "Standalone TOTP",
		"v5-custom-fields":          "Custom fields",
		"v5-note":                   "Note",
		"v5-pin-code":               "PIN code",
	}
})

// ValidateSchema checks v (decoded JSON) against s, for the keywords the
// resource type definitions use: type, anyOf, required, properties,
// items, maxItems, minLength, maxLength, pattern, enum, minimum and
// exclusiveMaximum ("format" is an annotation, as in JSON Schema 2020-12).
// Like the server's schemas it allows properties it does not list. The
// error names the field and the rule, never the value.
func ValidateSchema(s schema, v any) error { return validateAt(s, v, "") }

// SchemaError is a value that breaks its schema: the field (dotted path,
// "" for the value itself) and the rule it breaks.
type SchemaError struct{ Field, Reason string }

func (e *SchemaError) Error() string {
	if e.Field == "" {
		return e.Reason
	}
	return e.Field + ": " + e.Reason
}

func validateAt(s schema, v any, at string) error {
	fail := func(format string, args ...any) error {
		return &SchemaError{Field: at, Reason: fmt.Sprintf(format, args...)}
	}
	if t, ok := s["type"]; ok && !typeMatches(t, v) {
		return fail("must be of type %v", t)
	}
	if alts, ok := s["anyOf"].([]any); ok {
		var first error
		for _, a := range alts {
			err := validateAt(a.(schema), v, at)
			if err == nil {
				first = nil
				break
			}
			if first == nil {
				first = err
			}
		}
		if first != nil {
			return first
		}
	}
	if enum, ok := s["enum"].([]any); ok {
		found := false
		for _, e := range enum {
			if e == v {
				found = true
			}
		}
		if !found {
			return fail("must be one of %v", enum)
		}
	}
	switch x := v.(type) {
	case string:
		n := utf8.RuneCountInString(x)
		if m, ok := num(s["maxLength"]); ok && float64(n) > m {
			return fail("longer than %v characters", m)
		}
		if m, ok := num(s["minLength"]); ok && float64(n) < m {
			return fail("shorter than %v characters", m)
		}
		if p, ok := s["pattern"].(string); ok && !regexp.MustCompile(p).MatchString(x) {
			return fail("does not match %s", p)
		}
	case float64:
		if m, ok := num(s["minimum"]); ok && x < m {
			return fail("below the minimum %v", m)
		}
		if m, ok := num(s["exclusiveMaximum"]); ok && x >= m {
			return fail("must be below %v", m)
		}
	case []any:
		if m, ok := num(s["maxItems"]); ok && float64(len(x)) > m {
			return fail("more than %v items", m)
		}
		if items, ok := s["items"].(schema); ok {
			for i, e := range x {
				if err := validateAt(items, e, fmt.Sprintf("%s[%d]", at, i)); err != nil {
					return err
				}
			}
		}
	case map[string]any:
		req, _ := s["required"].([]string)
		for _, r := range req {
			if _, ok := x[r]; !ok {
				return &SchemaError{Field: join(at, r), Reason: "is required"}
			}
		}
		props, _ := s["properties"].(schema)
		keys := make([]string, 0, len(props))
		for k := range props {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if e, ok := x[k]; ok {
				if err := validateAt(props[k].(schema), e, join(at, k)); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func join(at, k string) string {
	if at == "" {
		return k
	}
	return at + "." + k
}

// typeMatches applies a "type" keyword. A type that is not a string or a
// list of strings (password-string's {"type": null}) constrains nothing.
func typeMatches(t, v any) bool {
	switch tt := t.(type) {
	case string:
		return isType(tt, v)
	case []any:
		for _, e := range tt {
			if s, ok := e.(string); ok && isType(s, v) {
				return true
			}
		}
		return false
	}
	return true
}

func isType(t string, v any) bool {
	switch t {
	case "string":
		_, ok := v.(string)
		return ok
	case "number":
		_, ok := v.(float64)
		return ok
	case "integer":
		f, ok := v.(float64)
		return ok && f == float64(int64(f))
	case "boolean":
		_, ok := v.(bool)
		return ok
	case "null":
		return v == nil
	case "array":
		_, ok := v.([]any)
		return ok
	case "object":
		_, ok := v.(map[string]any)
		return ok
	}
	return false
}

func num(v any) (float64, bool) {
	switch n := v.(type) {
	case int:
		return float64(n), true
	case float64:
		return n, true
	}
	return 0, false
}

// Definition returns the JSON definition the emulator serves for slug,
// for tests that validate with an independent JSON Schema implementation.
func Definition(slug string) (json.RawMessage, bool) {
	d, ok := definitions()[slug]
	if !ok {
		return nil, false
	}
	b, _ := json.Marshal(d)
	return b, true
}

// normalize round-trips v through JSON so it has the shapes ValidateSchema
// expects (float64 numbers, []any, map[string]any).
func normalize(v any) any {
	b, _ := json.Marshal(v)
	var out any
	_ = json.Unmarshal(b, &out)
	return out
}
