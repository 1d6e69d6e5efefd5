package fetch

import (
	"hash/maphash"
	"sync"
)

// memoKeepCalls is how many calls of EndCall an unused memo entry
// survives (between memoKeepCalls and twice that). It covers a render's
// discovery rounds (at most 8 Resolve calls per render), so what any
// round needs survives to the next render.
const memoKeepCalls = 16

// Memo is a map that forgets: an entry no Get or Put touched during the
// last memoKeepCalls calls of EndCall (one per Resolve) is dropped, so a
// memo holds what the current templates use and nothing a removed
// template once did. Providers use it, in memory only, to remember the
// result of work that is a pure function of its key (a decoded body, a
// decrypted ciphertext), so that a warm refresh of unchanged data does it
// once. The zero value is ready to use; it is safe for concurrent use.
type Memo[K comparable, V any] struct {
	mu     sync.Mutex
	call   uint64
	m      map[K]*memoEntry[V]
	misses int
}

type memoEntry[V any] struct {
	v    V
	used uint64 // the last call that used it
}

// Get returns the value stored under k, if any.
func (m *Memo[K, V]) Get(k K) (V, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if e, ok := m.m[k]; ok {
		e.used = m.call
		return e.v, true
	}
	m.misses++
	var zero V
	return zero, false
}

// Put stores v under k.
func (m *Memo[K, V]) Put(k K, v V) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.m == nil {
		m.m = map[K]*memoEntry[V]{}
	}
	m.m[k] = &memoEntry[V]{v: v, used: m.call}
}

// EndCall counts a call (a Resolve) and, every memoKeepCalls calls, drops
// the entries unused since the last such sweep.
func (m *Memo[K, V]) EndCall() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.call++
	if m.call%memoKeepCalls != 0 {
		return
	}
	for k, e := range m.m {
		if m.call-e.used > memoKeepCalls {
			delete(m.m, k)
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
	b.once.Do(func() { b.seeds = [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()} })
	return BodyKey{maphash.Bytes(b.seeds[0], body), maphash.Bytes(b.seeds[1], body), len(body)}
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
