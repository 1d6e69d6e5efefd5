package passbolt

import (
	"bytes"
	"encoding/json"
	"errors"
	"sync"
	"sync/atomic"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/injector-dev/injector/internal/crypto/pgp"
	"github.com/injector-dev/injector/internal/fetch"
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

// rawBody is what a listing request decodes to first: its body's value
// undecoded (a slice of the response) and the whole response, which goes
// back to the HTTP client (fetch.ReleaseBody) when nothing points into it.
type rawBody struct {
	value rawJSON
	resp  []byte
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
// messages (secrets, v5 metadata) this client decrypted, keyed by the
// message's JSON string as the server sent it (fetch.BodyKey: two 64-bit
// hashes with seeds random per process, so no server can aim for a
// collision, and its length) and the fingerprint of the key it was
// decrypted with. A server that sends the same ciphertext again (every
// warm refresh of unchanged data) gets no OpenPGP decryption, and the
// message is not even unquoted: that was two full decrypts per secret per
// refresh, the whole of a warm refresh's cost. A changed secret is a new
// message, so it is decrypted. The same message escaped differently by
// the server is only a miss. Failures are not remembered.
//
// Beside it, the bodies cache: the folder tree, listings and secret
// batches as they decoded, by the body's content (fetch.Bodies), so a
// body that is byte for byte one decoded before is taken as is: no JSON
// decoding, no lookup per message. A reused body marks the messages it
// holds used (fetch.Memo.Touch), so they stay cached as long as the body
// does; only clean results are kept (a row that could not be decrypted
// may be readable next time).
//
// Both are fetch.Memos: an entry not used in the last 16 Resolve calls is
// dropped by the EndCall that ends the 16th (exactly then: a cache of
// plaintext holds what the current templates reference and nothing a
// removed template once did, no longer than that). Nothing is written
// anywhere.
type plainCache struct {
	plain  fetch.Memo[plainKey, *plainEntry]
	bodies fetch.Bodies
	reuses atomic.Int64 // bodies not decoded again, for tests
}

type plainKey struct {
	msg fetch.BodyKey // the message's JSON string
	key string        // fingerprint of the key it opens with
}

// plainRef is a handle on a cached message: a kept body holds those of its
// messages, to mark them used without looking each up.
type plainRef = fetch.Held[plainKey, *plainEntry]

// kept is what a body decoded to, as the bodies cache holds it.
type kept struct {
	request string     // what the body answered (see decoded)
	val     any        // read-only once kept
	entries []plainRef // the messages val holds
}

// plainEntry is one decrypted message. The JSON in it is parsed at most
// once, on first use, and the parsed value kept with it: plain and the
// parsed values are shared by every run and never modified.
type plainEntry struct {
	plain []byte

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
func (c *plainCache) open(msg armored, d *pgp.Decrypter) (plainRef, error) {
	k := plainKey{c.bodies.Key(msg), d.Fingerprint()}
	if e, ok := c.plain.GetHeld(k); ok {
		return e, nil
	}
	text, err := msg.text()
	var plain []byte
	if err == nil {
		plain, err = d.DecryptUnverified(text)
	}
	if err != nil {
		return plainRef{}, err
	}
	return c.plain.PutHeld(k, &plainEntry{plain: plain}), nil
}

// decoded returns what body decoded to, if it was kept for the same
// request and is a T, and marks its messages used; the response then goes
// back to the HTTP client's buffers (nothing keeps it: the value kept
// points into the body it was decoded from). Else it returns the body's
// key, for keepDecoded, and the body to decode: a copy at its size, since
// what it decodes to keeps slices of it (armoredIn) for as long as it is
// cached, and the response is released all the same. request names what
// the body answered and what else its decoding depends on: the bodies
// cache is keyed by content alone, and two requests can be answered with
// the same bytes (an empty folder tree and an empty listing are both
// "[]") yet decode to different things; a secret batch also depends on
// the ids asked for. A body kept for another request is decoded again.
func decoded[T any](c *plainCache, request string, body rawBody) (val T, k fetch.BodyKey, own []byte, ok bool) {
	defer fetch.ReleaseBody(body.resp)
	k = c.bodies.Key(body.value)
	v, ok := fetch.Recall[*kept](&c.bodies, k)
	if ok && v.request == request {
		val, ok = v.val.(T)
	} else {
		ok = false
	}
	if !ok {
		return val, k, bytes.Clone(body.value), false
	}
	c.plain.Touch(v.entries)
	c.reuses.Add(1)
	return val, k, nil, true
}

// keepDecoded remembers val, read-only from now on, as what the body known
// by k decodes to (for request, as decoded); entries are the messages val
// holds.
func (c *plainCache) keepDecoded(k fetch.BodyKey, request string, val any, entries []plainRef) {
	c.bodies.Remember(k, &kept{request, val, entries})
}

// endCall ends one Resolve call for both caches.
func (c *plainCache) endCall() {
	c.plain.EndCall()
	c.bodies.EndCall()
}

// stats reports the number of cached messages and of decryptions done
// (lookups that missed, failed decryptions included).
func (c *plainCache) stats() (cached, decrypts int) { return c.plain.Stats() }

// bodyReuses reports how many response bodies were not decoded again.
func (c *plainCache) bodyReuses() int { return int(c.reuses.Load()) }
