package passbolt

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/injector-dev/injector/internal/fetch"
)

// replay is a RoundTripper that answers every request with one canned
// response, so the fuzzer drives the real response handling without a
// network.
type replay struct {
	status int
	header http.Header
	body   []byte
}

func (r replay) RoundTrip(req *http.Request) (*http.Response, error) {
	return &http.Response{
		StatusCode: r.status, Header: r.header.Clone(), Request: req, ContentLength: int64(len(r.body)),
		Body: io.NopCloser(bytes.NewReader(r.body)),
	}, nil
}

// fuzzStatuses are the statuses the envelope handling distinguishes; 401
// sends the client through re-authentication with the same body.
var fuzzStatuses = []int{200, 302, 400, 401, 403, 404, 409, 500, 503}

// FuzzEnvelope feeds arbitrary response bodies to the Passbolt envelope
// decoding (send), the body decoding of every listing shape (get) and
// the server-key step of login: no panic, and a failure is an error, never
// a half-filled success.
func FuzzEnvelope(f *testing.F) {
	for _, s := range []string{
		`{"header":{"status":"success","message":"The operation was successful.","url":"/resources.json","code":200},"body":[]}`,
		`{"header":{"status":"success","code":200},"body":[{"id":"8e3874ae-4b40-590b-968a-418f704b9d9a","name":"db","folder_parent_id":null}]}`,
		`{"header":{"status":"success","code":200},"body":{"id":"x","metadata":"-----BEGIN PGP MESSAGE-----\n\n-----END PGP MESSAGE-----"}}`,
		`{"header":{"status":"error","message":"Authentication is required to continue","code":401},"body":""}`,
		`{"header":{"status":"error","url":"/mfa/verify/error.json","code":403},"body":null}`,
		`{"header":{"status":"success","code":200},"body":{"fingerprint":"ABCD","keydata":"-----BEGIN PGP PUBLIC KEY BLOCK-----\n\n-----END PGP PUBLIC KEY BLOCK-----"}}`,
		`{"header":{"status":"success"`,
		`<html>502 Bad Gateway</html>`,
		``,
		`null`,
		`{"header":null,"body":{}}`,
		`{"header":{"code":"200"},"body":[null,1,"x"]}`,
	} {
		for i := range fuzzStatuses {
			f.Add(uint8(i), []byte(s))
		}
	}
	f.Fuzz(func(t *testing.T, statusIdx uint8, body []byte) {
		status := fuzzStatuses[int(statusIdx)%len(fuzzStatuses)]
		c := &Client{
			base: "https://passbolt.invalid", mode: AuthJWT, userID: "8e3874ae-4b40-590b-968a-418f704b9d9a",
			http: &fetch.HTTP{
				Client:   &http.Client{Transport: replay{status: status, header: http.Header{"Location": {"/mfa/verify/totp"}}, body: body}},
				Provider: "passbolt", MaxAttempts: 1, BaseDelay: time.Microsecond, MaxDelay: time.Microsecond,
			},
			now:      time.Now,
			auth:     authState{kind: AuthJWT, gen: 1, access: "a"},
			metaKeys: nil,
		}
		ctx := context.Background()

		if r, err := c.send(ctx, http.MethodGet, "/resources.json", nil, c.auth, false); err == nil && r == nil {
			t.Fatal("send: nil reply without error")
		}
		var rows []apiResource
		checkGet(t, c, "/resources.json?filter[has-parent][]=false", &rows)
		var folders []apiFolder
		checkGet(t, c, "/folders.json", &folders)
		var one apiResource
		checkGet(t, c, "/resources/8e3874ae-4b40-590b-968a-418f704b9d9a.json", &one)

		c.serverKey = nil
		if k, err := c.serverPublicKey(ctx); err == nil && k == nil {
			t.Fatal("serverPublicKey: nil key without error")
		}
	})
}

func checkGet(t *testing.T, c *Client, path string, out any) {
	t.Helper()
	status, err := c.get(context.Background(), path, out)
	if err == nil && status != http.StatusOK {
		t.Fatalf("get %s: status %d accepted", path, status)
	}
}
