package passbolt

import (
	"hash/maphash"
	"sync"

	"github.com/injector-dev/injector/internal/crypto/pgp"
)

// plainCache remembers, in memory only, the plaintext of the OpenPGP
// messages (secrets, v5 metadata) this client decrypted, keyed by a hash of
// the armored message (64-bit maphash with a seed random per process, so
// no server can aim for a collision; SHA-256 was a tenth of a warm
// refresh), its length and the fingerprint of the key it was decrypted
// with. A server that sends the same ciphertext again (every
// warm refresh of unchanged data) gets no OpenPGP decryption: that was
// two full decrypts per secret per refresh, the whole of a warm refresh's
// cost. A changed secret is a new message, so it is decrypted.
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

type plainEntry struct {
	plain []byte
	used  uint64 // the last call that used it
}

// decrypt returns the plaintext of armored, decrypting it (without a
// signature check, whose result the callers would discard) only when it is
// not cached.
func (c *plainCache) decrypt(armored string, key *pgp.Key) ([]byte, error) {
	c.mu.Lock()
	if c.m == nil {
		c.m, c.seed = map[plainKey]*plainEntry{}, maphash.MakeSeed()
	}
	k := plainKey{maphash.String(c.seed, armored), len(armored), pgp.Fingerprint(key)}
	if e, ok := c.m[k]; ok {
		e.used = c.call
		c.mu.Unlock()
		return e.plain, nil
	}
	c.mu.Unlock()
	plain, err := pgp.DecryptUnverified(armored, key)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.decrypts++
	if err != nil {
		return nil, err
	}
	c.m[k] = &plainEntry{plain: plain, used: c.call}
	return plain, nil
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
