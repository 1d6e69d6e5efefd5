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

// rawJSON is a JSON value kept undecoded, as a slice of the body (with
// armoredIn) or a copy.
type rawJSON []byte

func (r *rawJSON) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	v, err := dec.ReadValue()
	*r = append(rawJSON(nil), v...)
	return err
}

// armoredIn makes a decode of body keep armored and rawJSON values as
// slices of body instead of copies (body outlives the run that reads the
// rows).
func armoredIn(body []byte) jsonv2.Options {
	slice := func(dec *jsontext.Decoder) (v jsontext.Value, kept []byte, err error) {
		if v, err = dec.ReadValue(); err != nil {
			return nil, nil, err
		}
		end := int(dec.InputOffset())
		if start := end - len(v); start >= 0 && end <= len(body) && bytes.Equal(body[start:end], v) {
			return v, body[start:end:end], nil
		}
		return v, append([]byte(nil), v...), nil
	}
	return jsonv2.WithUnmarshalers(jsonv2.JoinUnmarshalers(
		jsonv2.UnmarshalFromFunc(func(dec *jsontext.Decoder, a *armored) error {
			v, kept, err := slice(dec)
			if err != nil {
				return err
			}
			return a.set(v, kept)
		}),
		jsonv2.UnmarshalFromFunc(func(dec *jsontext.Decoder, r *rawJSON) error {
			_, kept, err := slice(dec)
			*r = kept
			return err
		}),
	))
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
	bodies   map[string]*bodyEntry // by request path and query
	decrypts int                   // OpenPGP decryptions done (misses), for tests
	reuses   int                   // bodies not decoded again, for tests
}

// bodyEntry is what a listing or secret batch body decoded to, with the
// hash of the body and the decrypted messages it holds. A warm refresh
// whose response body is byte for byte the last one (unchanged data)
// takes it as is: no JSON decoding, no cache lookups per message.
type bodyEntry struct {
	hash    uint64
	size    int
	val     any
	entries []*plainEntry
	used    uint64
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

// decoded returns what body (the response to path) decoded to when it is
// the body last kept for path, and marks it and its messages used.
func (c *plainCache) decoded(path string, body []byte) (any, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	b := c.bodies[path]
	if b == nil || b.size != len(body) || b.hash != maphash.Bytes(c.seed, body) {
		return nil, false
	}
	b.used = c.call
	for _, e := range b.entries {
		e.used = c.call
	}
	c.reuses++
	return b.val, true
}

// keepDecoded remembers val, read-only from now on, as what body (the
// response to path) decodes to; entries are the messages val holds.
func (c *plainCache) keepDecoded(path string, body []byte, val any, entries []*plainEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m, c.seed = map[plainKey]*plainEntry{}, maphash.MakeSeed()
	}
	if c.bodies == nil {
		c.bodies = map[string]*bodyEntry{}
	}
	c.bodies[path] = &bodyEntry{maphash.Bytes(c.seed, body), len(body), val, entries, c.call}
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
	for k, b := range c.bodies {
		if c.call-b.used > keepCalls {
			delete(c.bodies, k)
		}
	}
}

// stats reports the number of cached messages and of decryptions done.
func (c *plainCache) stats() (cached, decrypts int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m), c.decrypts
}

// bodyReuses reports how many response bodies were not decoded again.
func (c *plainCache) bodyReuses() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reuses
}
