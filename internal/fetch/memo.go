package fetch

import (
	"hash/maphash"
	"sync"
)

// memoKeepCalls is how many calls of EndCall an unused memo entry
// survives: an entry last used in call c is dropped by the EndCall that
// ends call c+memoKeepCalls. It covers a render's discovery rounds (at
// most 8 Resolve calls per render), so what any round needs survives to
// the next render.
const memoKeepCalls = 16

// memoRing is how many calls' use counts a Memo keeps: the
// memoKeepCalls+1 calls a held entry can have been last used in, and the
// one whose entries are due to be dropped.
const memoRing = memoKeepCalls + 2

// Memo is a map that forgets: an entry no Get, Put or Touch used during
// the last memoKeepCalls calls of EndCall (one per Resolve) is dropped,
// so a memo holds what the current templates use and nothing a removed
// template once did. Providers use it, in memory only, to remember the
// result of work that is a pure function of its key (a decoded body, a
// decrypted ciphertext), so that a warm refresh of unchanged data does it
// once. The zero value is ready to use; it is safe for concurrent use.
//
// The rule is exact (not "some time after memoKeepCalls calls"), and
// cheap: EndCall walks the map only when some entry is due, which a
// memo whose entries are all in use never is. A memo of plaintext is
// held no longer than it must be, and a warm refresh of unchanged data
// pays no sweep at all.
type Memo[K comparable, V any] struct {
	mu     sync.Mutex
	call   uint64
	m      map[K]*memoEntry[K, V]
	misses int
	// lastUsed[c%memoRing] counts the held entries last used in call c.
	lastUsed [memoRing]int
}

type memoEntry[K comparable, V any] struct {
	v    V
	used uint64      // the last call that used it
	memo *Memo[K, V] // the memo that holds it; nil once dropped
}

// Held is a handle on a value a Memo holds (GetHeld, PutHeld). Whoever
// keeps many of them, such as a decoded body and the decryptions of the
// messages in it, marks them all used with Touch: no lookup per value.
// The zero Held holds nothing.
type Held[K comparable, V any] struct{ e *memoEntry[K, V] }

// Value is the value held (the zero V for the zero Held). Values are
// never replaced in place, so it needs no lock.
func (h Held[K, V]) Value() V {
	if h.e == nil {
		var zero V
		return zero
	}
	return h.e.v
}

// Get returns the value stored under k, if any.
func (m *Memo[K, V]) Get(k K) (V, bool) {
	h, ok := m.GetHeld(k)
	return h.Value(), ok
}

// GetHeld is Get returning a handle on the value.
func (m *Memo[K, V]) GetHeld(k K) (Held[K, V], bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if e, ok := m.m[k]; ok {
		m.use(e)
		return Held[K, V]{e}, true
	}
	m.misses++
	return Held[K, V]{}, false
}

// Put stores v under k.
func (m *Memo[K, V]) Put(k K, v V) { m.PutHeld(k, v) }

// PutHeld is Put returning a handle on the value stored.
func (m *Memo[K, V]) PutHeld(k K, v V) Held[K, V] {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.m == nil {
		m.m = map[K]*memoEntry[K, V]{}
	}
	if old, ok := m.m[k]; ok {
		m.drop(k, old)
	}
	e := &memoEntry[K, V]{v: v, used: m.call, memo: m}
	m.lastUsed[m.call%memoRing]++
	m.m[k] = e
	return Held[K, V]{e}
}

// Touch marks the values held as used in this call, as a Get of each
// would. A value m has dropped since (or never held) stays out of m.
func (m *Memo[K, V]) Touch(held []Held[K, V]) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, h := range held {
		if h.e != nil && h.e.memo == m {
			m.use(h.e)
		}
	}
}

// use marks e used in the current call (m.mu held).
func (m *Memo[K, V]) use(e *memoEntry[K, V]) {
	if e.used != m.call {
		m.lastUsed[e.used%memoRing]--
		e.used = m.call
		m.lastUsed[e.used%memoRing]++
	}
}

// drop removes e, held under k (m.mu held).
func (m *Memo[K, V]) drop(k K, e *memoEntry[K, V]) {
	delete(m.m, k)
	m.lastUsed[e.used%memoRing]--
	e.memo = nil
}

// EndCall counts a call (a Resolve) and drops the entries last used
// memoKeepCalls calls ago. Every held entry was used in one of the last
// memoKeepCalls+1 calls (older ones were dropped by earlier EndCalls), so
// those due are exactly the ones last used in call m.call-memoKeepCalls-1,
// and lastUsed says whether there are any: the map is walked only then.
func (m *Memo[K, V]) EndCall() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.call++
	if m.call <= memoKeepCalls {
		return
	}
	due := m.call - memoKeepCalls - 1
	if m.lastUsed[due%memoRing] == 0 {
		return
	}
	for k, e := range m.m {
		if e.used <= due {
			m.drop(k, e)
		}
	}
}

// Stats reports the number of entries held and of Gets that missed.
func (m *Memo[K, V]) Stats() (entries, misses int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.m), m.misses
}

// Bodies remembers decoded response bodies by their content, so a body
// the server sends again unchanged (every warm refresh of unchanged data)
// is not decoded again. A body is known by two 64-bit hashes with seeds
// random per process, and its length: no server can aim for a collision,
// and an accidental one has odds of 2^-128. Decoding is a pure function
// of the bytes, so a body that decoded once decodes the same way again.
// What is kept is what the provider decoded (ciphertext, names, ids),
// never written anywhere. The zero value is ready to use.
type Bodies struct {
	once  sync.Once
	seeds [2]maphash.Seed
	memo  Memo[BodyKey, any]
}

// BodyKey is what Bodies knows a body by.
type BodyKey struct {
	h1, h2 uint64
	size   int
}

// Key returns body's key.
func (b *Bodies) Key(body []byte) BodyKey {
	b.seed()
	return BodyKey{maphash.Bytes(b.seeds[0], body), maphash.Bytes(b.seeds[1], body), len(body)}
}

// seed picks b's hash seeds, once.
func (b *Bodies) seed() {
	b.once.Do(func() { b.seeds = [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()} })
}

// Recall returns what the body known by k decoded to as a T, if b holds it.
// The value is the one stored: callers must not modify it.
func Recall[T any](b *Bodies, k BodyKey) (T, bool) {
	if v, ok := b.memo.Get(k); ok {
		if t, ok := v.(T); ok {
			return t, true
		}
	}
	var zero T
	return zero, false
}

// Remember stores what the body known by k decoded to.
func (b *Bodies) Remember(k BodyKey, v any) { b.memo.Put(k, v) }

// EndCall is Memo.EndCall: bodies not seen for a while are forgotten.
func (b *Bodies) EndCall() { b.memo.EndCall() }

// Stats reports the number of bodies held and how many were decoded
// (memo misses).
func (b *Bodies) Stats() (held, decoded int) { return b.memo.Stats() }

// Decode returns decode(body), decoding only a body it has not decoded
// (successfully) before; errors are not remembered. The value returned
// for a remembered body is the one stored: callers must not modify it. A
// nil b decodes every time.
func Decode[T any](b *Bodies, body []byte, decode func([]byte) (T, error)) (T, error) {
	if b == nil {
		return decode(body)
	}
	k := b.Key(body)
	if t, ok := Recall[T](b, k); ok {
		return t, nil
	}
	t, err := decode(body)
	if err == nil {
		b.Remember(k, t)
	}
	return t, err
}

// Hasher returns a BodyHasher for b's keys: a body written to it in any
// number of pieces has the key Key gives the whole body, so a body can be
// hashed as it is read, while each piece is still in the cache.
func (b *Bodies) Hasher() *BodyHasher {
	b.seed()
	h := &BodyHasher{}
	h.h[0].SetSeed(b.seeds[0])
	h.h[1].SetSeed(b.seeds[1])
	return h
}

// BodyHasher computes a BodyKey piece by piece; see Bodies.Hasher.
type BodyHasher struct {
	h    [2]maphash.Hash
	size int
}

// Write adds p to the body hashed so far.
func (h *BodyHasher) Write(p []byte) {
	h.h[0].Write(p)
	h.h[1].Write(p)
	h.size += len(p)
}

// Key is the key of the body written so far.
func (h *BodyHasher) Key() BodyKey { return BodyKey{h.h[0].Sum64(), h.h[1].Sum64(), h.size} }
