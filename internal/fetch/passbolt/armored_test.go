package passbolt

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/injector-dev/injector/internal/fetch"
)

// A listing is decoded in one pass with its envelope, and its armored
// messages are kept as the JSON strings of the body itself: no copy, no
// unescaping until a message must be decrypted.
func TestArmoredIsASliceOfTheBody(t *testing.T) {
	msg := "-----BEGIN PGP MESSAGE-----\n\nwV4D\u002bxyz\n-----END PGP MESSAGE-----\n"
	body := []byte(`{"header":{"status":"success","code":200},"body":[` +
		`{"id":"1","metadata":"` + strings.NewReplacer("\n", `\n`, "+", `\u002b`).Replace(msg) + `"},` +
		`{"id":"2","metadata":null},{"id":"3","metadata":""},{"id":"4"}]}`)
	var rows []apiResource
	env := envelopeInto{Body: bodyInto{out: &rows}}
	if err := fetch.UnmarshalJSON(body, &env, armoredIn(body)); err != nil {
		t.Fatal(err)
	}
	if len(rows) != 4 {
		t.Fatalf("decoded %d rows, want 4", len(rows))
	}
	m := rows[0].Metadata
	start := uintptr(unsafe.Pointer(unsafe.SliceData(body)))
	if p := uintptr(unsafe.Pointer(unsafe.SliceData(m))); p < start || p >= start+uintptr(len(body)) {
		t.Error("the armored message was copied out of the body")
	}
	if text, err := m.text(); err != nil || text != msg {
		t.Errorf("text() = %q, %v; want %q", text, err, msg)
	}
	for _, r := range rows[1:] {
		if r.Metadata != nil {
			t.Errorf("row %s: metadata %q, want none", r.ID, r.Metadata)
		}
	}

	// Without armoredIn (a body decoded on its own) the token is copied.
	var one apiResource
	if err := fetch.UnmarshalJSON([]byte(`{"metadata":"abc"}`), &one); err != nil || string(one.Metadata) != `"abc"` {
		t.Errorf("copied token = %q, %v", one.Metadata, err)
	}
	// A message that is not a string is a malformed body.
	if err := fetch.UnmarshalJSON([]byte(`{"metadata":42}`), &one); err == nil {
		t.Error("a number accepted as an armored message")
	}
}

// A 200 envelope must carry a body of the shape asked for; one without a
// body is malformed, not an empty listing.
func TestEnvelopeWithoutBodyIsMalformed(t *testing.T) {
	for _, body := range []string{
		`{"header":{"status":"success","code":200}}`,
		`{"header":{"status":"success","code":200},"body":{"id":"x"}}`,
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte(body)) }))
		defer srv.Close()
		c := &Client{base: srv.URL, http: fetch.Options{MaxAttempts: 1}.NewHTTP("passbolt"),
			auth: authState{kind: AuthJWT, gen: 1, access: "a"}, now: time.Now}
		var rows []apiResource
		if _, err := c.get(context.Background(), "/resources.json", &rows); err == nil || !strings.Contains(err.Error(), "malformed response body") {
			t.Errorf("%s: %v, want a malformed body", body, err)
		}
	}
}
