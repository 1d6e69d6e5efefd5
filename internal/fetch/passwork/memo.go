package passwork

import (
	"encoding/base64"
	"strings"

	pwcrypto "github.com/injector-dev/injector/internal/crypto/passwork"
	"github.com/injector-dev/injector/internal/fetch"
)

// memos are what spares a warm refresh of unchanged data the work it did
// last time: the decoding of the response bodies (search results, batches
// of entries) it has seen before, and the AESpw decryptions (item keys,
// values) of ciphertexts it has opened before under the same key. Both
// are pure functions of what they are keyed by, so a remembered result is
// the result: a changed entry comes with a new ciphertext (Passwork
// re-encrypts with a fresh salt on every edit), which is decrypted. They
// live in memory only, are never written anywhere, and forget what the
// last 16 Resolve calls did not use (fetch.Memo).
type memos struct {
	bodies fetch.Bodies
	aespw  fetch.Memo[aespwKey, string]
}

// aespwKey is one decryption: the ciphertext and the key it was opened
// with, compared in full (no hash).
type aespwKey struct{ ciphertext, key string }

// maxMemoCiphertext bounds what is remembered: a value this long (an
// attachment's data) is decrypted every time instead of held in memory.
const maxMemoCiphertext = 64 << 10

// decrypt is pwcrypto.Decrypt, remembered. A nil m remembers nothing.
func (m *memos) decrypt(ciphertext, key string) (string, error) {
	if m == nil || len(ciphertext) > maxMemoCiphertext {
		return pwcrypto.Decrypt(ciphertext, key)
	}
	k := aespwKey{ciphertext, key}
	if v, ok := m.aespw.Get(k); ok {
		return v, nil
	}
	v, err := pwcrypto.Decrypt(ciphertext, key)
	if err == nil {
		m.aespw.Put(k, v)
	}
	return v, err
}

// endCall ends one Resolve call for both memos.
func (m *memos) endCall() {
	if m != nil {
		m.bodies.EndCall()
		m.aespw.EndCall()
	}
}

// open decrypts one value under key, or base64-decodes it when the entry
// is stored with encryption off.
func (m *memos) open(v, key string, plain bool) (string, error) {
	if v == "" {
		return "", nil
	}
	if plain {
		if len(v) >= len(aespwPrefix) && strings.EqualFold(v[:len(aespwPrefix)], aespwPrefix) {
			return "", errEncryptedNoKey
		}
		b, err := base64.StdEncoding.DecodeString(v)
		if err != nil {
			return "", pwcrypto.ErrDecrypt
		}
		return string(b), nil
	}
	return m.decrypt(v, key)
}
