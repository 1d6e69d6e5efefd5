package passbolt

import (
	"bytes"
	"testing"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/injector-dev/injector/internal/fetch"
)

// FuzzSplitEnvelope checks splitEnvelope, which finds an envelope's body
// without scanning it, against a full decode of the same bytes: whenever
// it splits a response and both parts it found are valid JSON, the whole
// response is a valid envelope with exactly those parts; when a part is
// not valid, neither is the envelope (the caller's decode of the body then
// reports it malformed, as the full decode would have).
func FuzzSplitEnvelope(f *testing.F) {
	for _, s := range []string{
		`{"header":{"status":"success","code":200},"body":[]}`,
		`{"body":[{"id":"x","data":"-----BEGIN PGP MESSAGE-----\n\nwcBMA\\\"\n-----END PGP MESSAGE-----\n"}],"header":{"id":"a","servertime":1}}` + "\n",
		` { "header" : null , "body" : "" } `,
		`{"header":{},"body":true}`,
		`{"header":{},"body":-1.5e3}`,
		`{"header":{},"body":{"a":"}]\\\\"}}`,
		`{"header":{},"body":[1,2}`,
		`{"header":{},"body":[1,2]}x`,
		`{"header":{},"body":[],"body":[1]}`,
		`{"header":{},"b\u006fdy":[]}`,
		`{"header":{},"body":[],"extra":1}`,
		`{"header":{"status":"success"`,
		`{"header":{},"body":"\"}`,
		`{"header":{},"body":tru}`,
		`[]`,
		``,
	} {
		f.Add([]byte(s))
	}
	lenient := []jsontext.Options{jsontext.AllowInvalidUTF8(true), jsontext.AllowDuplicateNames(true)}
	f.Fuzz(func(t *testing.T, data []byte) {
		header, body, ok := splitEnvelope(data)
		if !ok {
			return // decoded the ordinary way
		}
		var env struct {
			Header jsontext.Value `json:"header"`
			Body   jsontext.Value `json:"body"`
		}
		err := fetch.UnmarshalJSON(data, &env)
		valid := jsontext.Value(header).IsValid(lenient...) && jsontext.Value(body).IsValid(lenient...)
		switch {
		case valid && err != nil:
			t.Fatalf("split %q into header %q and body %q, but it is no valid envelope: %v", data, header, body, err)
		case valid && (!bytes.Equal(env.Header, header) || !bytes.Equal(env.Body, body)):
			t.Fatalf("split %q into header %q and body %q; a full decode found %q and %q", data, header, body, env.Header, env.Body)
		case !valid && err == nil:
			t.Fatalf("%q is a valid envelope, but the split found header %q and body %q", data, header, body)
		}
	})
}
