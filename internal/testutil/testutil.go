// Package testutil holds small helpers shared by tests in several
// packages. Production code never imports it.
package testutil

import (
	"bytes"
	"runtime"
	"sync"
	"testing"
	"time"
)

// SyncBuffer is a bytes.Buffer that a process (or goroutine) may write to
// while a test reads it.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns everything written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// WaitFor polls cond every few milliseconds until it holds, and fails the
// test if it does not within limit. The limit only keeps a broken test
// from hanging; it asserts nothing about speed.
func WaitFor(t testing.TB, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	end := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Patience is how long tests wait for a condition before declaring it
// will never hold. It only bounds a broken test; on a busy machine (a
// loaded CI runner, two cores shared with other builds) things that take
// milliseconds can take seconds, so it is long.
const Patience = 2 * time.Minute

// BytesPerRun returns the heap bytes one call of f allocates, averaged
// over runs calls (after one call not counted). Allocation guards compare
// it for n and k·n items: linear work grows about k×.
func BytesPerRun(runs int, f func()) float64 {
	f()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range runs {
		f()
	}
	runtime.ReadMemStats(&after)
	return float64(after.TotalAlloc-before.TotalAlloc) / float64(runs)
}
