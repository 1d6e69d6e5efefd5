package passbolt

import (
	"bytes"
	"encoding/json"
	"errors"
	"hash/maphash"
	"sync"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/injector-dev/injector/internal/crypto/pgp"
)

// armored is an armored OpenPGP message as the response body carries it:
// the JSON string token itself, quotes and escapes included, a slice of
// the body (armoredIn) or a copy. It is unquoted only when the message
// must be decrypted; a warm refresh that finds its plaintext cached never
// copies, unescapes or dearmors it. Empty is nil (null and "" both).
type armored []byte

// armoredIn makes a decode of body keep armored values as slices of body
// instead of copies (body outlives the run that reads the rows).
func armoredIn(body []byte) jsonv2.Options {
	return jsonv2.WithUnmarshalers(jsonv2.UnmarshalFromFunc(func(dec *jsontext.Decoder, a *armored) error {
		v, err := dec.ReadValue()
		if err != nil {
			return err
		}
		end := int(dec.InputOffset())
		if start := end - len(v); start >= 0 && end <= len(body) && bytes.Equal(body[start:end], v) {
			return a.set(v, body[start:end:end])
		}
		return a.set(v, append([]byte(nil), v...))
	}))
}

// UnmarshalJSONFrom is the decoding without armoredIn: a copy of the token.
func (a *armored) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	v, err := dec.ReadValue()
	if err != nil {
		return err
	}
	return a.set(v, append([]byte(nil), v...))
}

func (a *armored) set(v jsontext.Value, keep []byte) error {
	switch v.Kind() {
	case 'n':
		*a = nil
	case '"':
		if len(v) == 2 {
			*a = nil
		} else {
			*a = keep
		}
	default:
		return errNotString
	}
	return nil
}

var errNotString = errors.New("an armored message must be a JSON string")

// text is the armored message itself. The error says nothing of the bytes.
func (a armored) text() (string, error) {
	b, err := jsontext.AppendUnquote(nil, []byte(a))
	if err != nil {
		return "", errors.New("pgp: message is not a valid JSON string")
	}
	return string(b), nil
}

// plainCache remembers, in memory only, the plaintext of the OpenPGP
// messages (secrets, v5 metadata) this client decrypted, keyed by a hash of
// the message's JSON string as the server sent it (64-bit maphash with a
// seed random per process, so no server can aim for a collision), its
// length and the fingerprint of the key it was decrypted with. A server
// that sends the same ciphertext again (every warm refresh of unchanged
// data) gets no OpenPGP decryption, and the message is not even unquoted:
// that was two full decrypts per secret per refresh, the whole of a warm
// refresh's cost. A changed secret is a new message, so it is decrypted. The
// same message escaped differently by the server is only a miss.
//
// An entry not used in the last keepCalls Resolve calls is dropped, so the
// cache holds what the current templates reference and nothing a
// removed template once did. It is never written anywhere.
type plainCache struct {
	mu       sync.Mutex
	seed     maphash.Seed
	call     uint64 // Resolve calls so far
	m        map[plainKey]*plainEntry
	decrypts int // OpenPGP decryptions done (misses), for tests
}

// keepCalls covers a render's discovery rounds (at most 8 Resolve calls
// per render), so what any round needs survives to the next render.
const keepCalls = 16

type plainKey struct {
	hash uint64
	size int
	key  string // fingerprint
}

// plainEntry is one decrypted message. The JSON in it is parsed at most
// once, on first use, and the parsed value kept with it: plain and the
// parsed values are shared by every run and never modified.
type plainEntry struct {
	plain []byte
	used  uint64 // the last call that used it (guarded by plainCache.mu)

	metaOnce sync.Once
	meta     *resourceMetadata // nil: not JSON
	secOnce  sync.Once
	sec      *secretJSON // nil: not JSON
}

// metadata is the plaintext parsed as v5 metadata (folders' too: they
// carry a name like resources).
func (e *plainEntry) metadata() (*resourceMetadata, bool) {
	return parseOnce(&e.metaOnce, &e.meta, e.plain)
}

// secret is the plaintext parsed as a JSON secret.
func (e *plainEntry) secret() (*secretJSON, bool) {
	return parseOnce(&e.secOnce, &e.sec, e.plain)
}

// parseOnce decodes plain into *dst on the first call (nil when it is not
// JSON) and returns what it decoded.
func parseOnce[T any](once *sync.Once, dst **T, plain []byte) (*T, bool) {
	once.Do(func() {
		v := new(T)
		if json.Unmarshal(plain, v) == nil {
			*dst = v
		}
	})
	return *dst, *dst != nil
}

// open returns the decrypted message msg, decrypting it (without a
// signature check, whose result the callers would discard) only when it is
// not cached.
func (c *plainCache) open(msg armored, d *pgp.Decrypter) (*plainEntry, error) {
	c.mu.Lock()
	if c.m == nil {
		c.m, c.seed = map[plainKey]*plainEntry{}, maphash.MakeSeed()
	}
	k := plainKey{maphash.Bytes(c.seed, msg), len(msg), d.Fingerprint()}
	if e, ok := c.m[k]; ok {
		e.used = c.call
		c.mu.Unlock()
		return e, nil
	}
	c.mu.Unlock()
	text, err := msg.text()
	var plain []byte
	if err == nil {
		plain, err = d.DecryptUnverified(text)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.decrypts++
	if err != nil {
		return nil, err
	}
	e := &plainEntry{plain: plain, used: c.call}
	c.m[k] = e
	return e, nil
}

// endCall counts a Resolve call and drops what has not been used for
// keepCalls calls.
func (c *plainCache) endCall() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.call++
	for k, e := range c.m {
		if c.call-e.used > keepCalls {
			delete(c.m, k)
		}
	}
}

// stats reports the number of cached messages and of decryptions done.
func (c *plainCache) stats() (cached, decrypts int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m), c.decrypts
}
