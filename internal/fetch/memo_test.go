package fetch

import (
	"errors"
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
