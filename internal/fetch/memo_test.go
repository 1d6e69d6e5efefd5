package fetch

import (
	"errors"
	"math/rand/v2"
	"testing"
)

func TestMemoForgetsUnusedEntries(t *testing.T) {
	var m Memo[string, int]
	m.Put("kept", 1)
	m.Put("dropped", 2)
	for range 3 * memoKeepCalls {
		if v, ok := m.Get("kept"); !ok || v != 1 {
			t.Fatalf("kept = %v, %v", v, ok)
		}
		m.EndCall()
	}
	if _, ok := m.Get("dropped"); ok {
		t.Error("an entry unused for many calls is still held")
	}
	if n, _ := m.Stats(); n != 1 {
		t.Errorf("%d entries held, want 1", n)
	}
}

// An entry is dropped exactly when it has gone memoKeepCalls calls unused
// (by the EndCall that ends the memoKeepCalls-th), whatever mix of Get,
// Put and Touch used it: checked against a plain model over random calls,
// including long idle stretches and keys that come back.
func TestMemoDropsExactlyWhenUnused(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var m Memo[int, int]
	model := map[int]uint64{} // key -> last call that used it
	held := map[int]Held[int, int]{}
	var call uint64
	for range 2000 {
		touches := rng.IntN(6)
		if rng.IntN(10) == 0 {
			touches = 0 // an idle call: everything ages
		}
		var batch []Held[int, int]
		for range touches {
			k := rng.IntN(40)
			switch rng.IntN(3) {
			case 0:
				_, ok := m.Get(k)
				if _, in := model[k]; ok != in {
					t.Fatalf("call %d: Get(%d) held = %v, model %v", call, k, ok, in)
				}
				if ok {
					model[k] = call
				}
			case 1:
				held[k] = m.PutHeld(k, k)
				model[k] = call
			case 2:
				if h, ok := held[k]; ok {
					batch = append(batch, h)
					if h.e.memo == &m {
						model[k] = call
					}
				}
			}
		}
		m.Touch(batch)
		m.EndCall()
		call++
		for k, used := range model {
			if call-used > memoKeepCalls {
				delete(model, k)
			}
		}
		if n, _ := m.Stats(); n != len(model) {
			t.Fatalf("after call %d: %d entries held, model %d", call, n, len(model))
		}
		for k := range model {
			if _, ok := m.m[k]; !ok {
				t.Fatalf("after call %d: %d dropped early", call, k)
			}
		}
	}
}

// Touch keeps what it is given as a Get would, needs no key, and does not
// bring back what the memo dropped.
func TestMemoTouch(t *testing.T) {
	var m Memo[string, int]
	a, b := m.PutHeld("a", 1), m.PutHeld("b", 2)
	for range memoKeepCalls + 1 {
		m.Touch([]Held[string, int]{a})
		m.EndCall()
	}
	if v, ok := m.Get("a"); !ok || v != 1 || a.Value() != 1 {
		t.Errorf("touched a: %v, %v", v, ok)
	}
	if _, ok := m.Get("b"); ok {
		t.Fatal("b was never touched, still held")
	}
	if b.Value() != 2 {
		t.Error("a handle lost its value when the memo dropped it")
	}
	m.Touch([]Held[string, int]{b, {}})
	if n, _ := m.Stats(); n != 1 {
		t.Errorf("Touch of a dropped entry: %d entries held, want 1", n)
	}
	// A value stored again under a key replaces the old one; the old
	// handle no longer keeps anything alive.
	a2 := m.PutHeld("a", 3)
	for range memoKeepCalls + 1 {
		m.Touch([]Held[string, int]{a})
		m.EndCall()
	}
	if _, ok := m.Get("a"); ok || a2.Value() != 3 {
		t.Error("the replaced entry's handle kept its key alive")
	}
}

func TestDecodeOnce(t *testing.T) {
	var b Bodies
	decodes := 0
	decode := func(data []byte) (string, error) {
		decodes++
		if string(data) == "bad" {
			return "", errors.New("malformed")
		}
		return "decoded " + string(data), nil
	}
	for _, body := range []string{"a", "a", "b", "a", "bad", "bad", "b"} {
		got, err := Decode(&b, []byte(body), decode)
		if body == "bad" {
			if err == nil {
				t.Errorf("%q: no error", body)
			}
			continue
		}
		if err != nil || got != "decoded "+body {
			t.Errorf("%q: %q, %v", body, got, err)
		}
	}
	// a and b once each; a failure is not remembered, so twice.
	if decodes != 4 {
		t.Errorf("%d decodes, want 4", decodes)
	}
	if held, missed := b.Stats(); held != 2 || missed != 4 {
		t.Errorf("Stats = %d held, %d decoded; want 2, 4", held, missed)
	}
	// A body decoded as another type is decoded again, not mistaken.
	n, err := Decode(&b, []byte("a"), func([]byte) (int, error) { return 7, nil })
	if err != nil || n != 7 {
		t.Errorf("as int: %v, %v", n, err)
	}
	// Without a memo every body is decoded.
	decodes = 0
	for range 2 {
		Decode(nil, []byte("a"), decode)
	}
	if decodes != 2 {
		t.Errorf("nil Bodies: %d decodes, want 2", decodes)
	}
}

// A body hashed piece by piece, as it is read, has the key of the whole
// body, however it is cut; another body has another key.
func TestBodyHasherMatchesKey(t *testing.T) {
	var b Bodies
	body := make([]byte, 1000)
	for i := range body {
		body[i] = byte(i * 7)
	}
	for _, n := range []int{0, 1, 127, 128, 129, 300, 1000} {
		want := b.Key(body[:n])
		for _, cut := range []int{1, 7, 128, 256, 1000} {
			h := b.Hasher()
			for p := body[:n]; len(p) > 0; p = p[min(cut, len(p)):] {
				h.Write(p[:min(cut, len(p))])
			}
			if got := h.Key(); got != want {
				t.Errorf("%d bytes in pieces of %d: key %v, want %v", n, cut, got, want)
			}
		}
	}
	changed := append([]byte(nil), body...)
	changed[500]++
	h := b.Hasher()
	h.Write(changed)
	if h.Key() == b.Key(body) {
		t.Error("a changed body has the key of the original")
	}
}
