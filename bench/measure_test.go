package bench

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/injector-dev/injector/bench/floor/pgpwork"
	"github.com/injector-dev/injector/internal/crypto/envelope"
	pwcrypto "github.com/injector-dev/injector/internal/crypto/passwork"
	"github.com/injector-dev/injector/internal/fetch/fetchtest"
	"github.com/injector-dev/injector/internal/fetch/passbolt/passbolttest"
	"github.com/injector-dev/injector/internal/template"
)

// Every resolve benchmark reports, beside the refresh itself, two
// references measured in the same process on the same data:
//
//   - replay: the HTTP requests of one warm refresh, recorded, sent again by
//     a bare net/http client that reads every body and decodes nothing. It
//     is what the emulator and the HTTP stack cost, so refresh − replay is
//     the CPU of injector's own client (JSON, crypto, templates).
//   - floor: the decryption no client can avoid for the same data
//     (Passwork: unwrap each item key and decrypt the field; PassAgent:
//     open each envelope; Passbolt, warm and unchanged: nothing).
//
// CPU is the process's user+system time (getrusage), so the emulator's
// goroutines and the garbage collector are counted wherever they run.

// cpuNow returns the CPU time this process has used so far.
func cpuNow() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		panic(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// cpuPerOp runs f n times and returns the CPU time of one run.
func cpuPerOp(b *testing.B, n int, f func() error) time.Duration {
	runtime.GC() // each measurement pays for its own garbage, not the last one's
	start := cpuNow()
	for range n {
		if err := f(); err != nil {
			b.Fatal(err)
		}
	}
	return (cpuNow() - start) / time.Duration(n)
}

// recorder is an http.RoundTripper that, while on, keeps a copy of every
// request it sends.
type recorder struct {
	base http.RoundTripper
	mu   sync.Mutex
	on   bool
	reqs []recorded
}

type recorded struct {
	method, url string
	header      http.Header
	body        []byte
}

func newRecorder() *recorder {
	return &recorder{base: http.DefaultTransport.(*http.Transport).Clone()}
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	r.mu.Lock()
	on := r.on
	r.mu.Unlock()
	if on {
		rec := recorded{method: req.Method, url: req.URL.String(), header: req.Header.Clone()}
		if req.Body != nil {
			body, err := io.ReadAll(req.Body)
			req.Body.Close()
			if err != nil {
				return nil, err
			}
			rec.body = body
			req.Body = io.NopCloser(bytes.NewReader(body))
		}
		r.mu.Lock()
		r.reqs = append(r.reqs, rec)
		r.mu.Unlock()
	}
	return r.base.RoundTrip(req)
}

// record runs f with recording on and returns what was sent.
func (r *recorder) record(f func() error) ([]recorded, error) {
	r.mu.Lock()
	r.on, r.reqs = true, nil
	r.mu.Unlock()
	err := f()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.on = false
	return r.reqs, err
}

// replayer sends recorded requests with a bare client: one keep-alive
// transport, bodies read in full and thrown away.
type replayer struct {
	client *http.Client
	reqs   []recorded
}

func newReplayer(reqs []recorded) *replayer {
	return &replayer{client: &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}, reqs: reqs}
}

func (p *replayer) run() error {
	for _, rec := range p.reqs {
		var body io.Reader
		if rec.body != nil {
			body = bytes.NewReader(rec.body)
		}
		req, err := http.NewRequest(rec.method, rec.url, body)
		if err != nil {
			return err
		}
		req.Header = rec.header.Clone()
		resp, err := p.client.Do(req)
		if err != nil {
			return err
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil {
			return err
		}
		if resp.StatusCode/100 != 2 {
			return fmt.Errorf("replay %s %s: HTTP %d", rec.method, rec.url, resp.StatusCode)
		}
	}
	return nil
}

// randomKey returns a key as the official clients make them: n characters
// of [A-Za-z0-9].
func randomKey(n int) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, n)
	rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

// passworkFloor returns the unavoidable work of a Passwork refresh of es:
// per entry, unwrap its 100-character item key with the vault key (AESpw)
// and decrypt the password with it. The ciphertexts have the emulator's
// shapes and sizes.
func passworkFloor(b testing.TB, es []fetchtest.Entry) func() error {
	vaultKey := randomKey(100)
	keys, pws := make([]string, len(es)), make([]string, len(es))
	for i, e := range es {
		itemKey := randomKey(100)
		var err error
		if keys[i], err = pwcrypto.Encrypt(itemKey, vaultKey); err != nil {
			b.Fatal(err)
		}
		if pws[i], err = pwcrypto.Encrypt(e.Fields["password"], itemKey); err != nil {
			b.Fatal(err)
		}
	}
	return func() error {
		for i := range keys {
			k, err := pwcrypto.Decrypt(keys[i], vaultKey)
			if err != nil {
				return err
			}
			if _, err := pwcrypto.Decrypt(pws[i], k); err != nil {
				return err
			}
		}
		return nil
	}
}

// passagentFloor is one envelope open (unwrap the item key, AES-GCM the
// payload) per entry.
func passagentFloor(b testing.TB, es []fetchtest.Entry) func() error {
	vk := make([]byte, 32)
	rand.Read(vk)
	wrapped, data := make([]string, len(es)), make([]string, len(es))
	for i, e := range es {
		payload := fmt.Appendf(nil, `{"name":%q,"password":%q,"username":%q,"url":"","notes":"","custom_fields":[]}`,
			e.Path, e.Fields["password"], e.Fields["login"])
		var err error
		if wrapped[i], data[i], err = envelope.Seal(vk, payload); err != nil {
			b.Fatal(err)
		}
	}
	return func() error {
		for i := range wrapped {
			if _, err := envelope.Open(vk, wrapped[i], data[i]); err != nil {
				return err
			}
		}
		return nil
	}
}

// passboltColdFloor returns the OpenPGP work a cold Passbolt run cannot
// avoid for the messages in m (pgpwork.Decrypt: unlock the user's private
// key, then decrypt every message once without verifying a signature), to
// be measured in this process.
func passboltColdFloor(m passbolttest.Messages) func() error {
	w := pgpwork.Messages(m)
	return func() error { return pgpwork.Decrypt(w) }
}

// BenchmarkReplayPasswork measures the Passwork emulator alone: the
// requests of one warm refresh of n secrets in 3 vaults, replayed by a bare
// client. replay-µs/secret stays flat as n grows when every lookup the
// emulator makes is indexed (it grew with n while items were found by a
// scan).
func BenchmarkReplayPasswork(b *testing.B) {
	for _, n := range []int{1000, 10000, 20000} {
		b.Run(fmt.Sprintf("secrets=%d/vaults=3", n), func(b *testing.B) {
			es := entries(n, 3, false)
			em := newPasswork(b, es)
			tpl := templateFor(b, "passwork", es)
			e := &template.Engine{Providers: map[string]template.Resolver{"passwork": em.resolver}}
			render := func() error { _, err := e.Render(context.Background(), []*template.Template{tpl}); return err }
			if err := render(); err != nil {
				b.Fatal(err)
			}
			reqs, err := em.rec.record(render)
			if err != nil {
				b.Fatal(err)
			}
			replay := newReplayer(reqs).run
			b.ResetTimer()
			cpu := cpuPerOp(b, b.N, replay)
			b.ReportMetric(float64(cpu.Microseconds())/float64(n), "replay-µs/secret")
		})
	}
}

// TestPassboltColdFloor checks that the floor of BenchmarkRunColdPassbolt
// decrypts every message a cold run of the same data reads: one metadata
// key entry, the 8 folders of 4 top-level folders with apps/ below each,
// and the metadata and secret of each resource.
func TestPassboltColdFloor(t *testing.T) {
	m, err := passboltServer(t, entries(4, 4, false)).Messages()
	if err != nil {
		t.Fatal(err)
	}
	got := []int{len(m.MetadataKeys), len(m.Folders), len(m.Metadata), len(m.Secrets)}
	if want := []int{1, 8, 4, 4}; !slices.Equal(got, want) {
		t.Fatalf("messages (metadata keys, folders, metadata, secrets) = %v, want %v", got, want)
	}
	if err := passboltColdFloor(m)(); err != nil {
		t.Fatal(err)
	}
	m.Secrets[0] = m.Folders[0] // encrypted to the metadata key, not the user's
	if err := passboltColdFloor(m)(); err == nil {
		t.Error("the floor decrypted a message with a key it is not encrypted to")
	}
}
