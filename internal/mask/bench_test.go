package mask

import (
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
)

// BenchmarkWriter masks 4 MiB of log-like output, written in 4 KiB pieces
// (what a pipe read gives), with n random 40-byte secrets of which one in
// every 64 lines carries one. The figure that matters is MB/s: a child's
// output must not be slowed by the number of secrets.
func BenchmarkWriter(b *testing.B) {
	for _, n := range []int{10, 100, 1000} {
		b.Run(fmt.Sprintf("secrets=%d", n), func(b *testing.B) {
			rng := rand.New(rand.NewPCG(1, uint64(n)))
			secrets := make([]string, n)
			for i := range secrets {
				secrets[i] = randomText(rng, 40, secretAlphabet)
			}
			in := logText(rng, 4<<20, secrets)
			w := NewWriter(io.Discard, secrets, Replacement)
			b.SetBytes(int64(len(in)))
			b.ResetTimer()
			for range b.N {
				for i := 0; i < len(in); i += 4096 {
					w.Write(in[i:min(i+4096, len(in))])
				}
				w.Flush()
			}
		})
	}
}

const (
	secretAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=-_!@#%"
	logAlphabet    = "abcdefghijklmnopqrstuvwxyz0123456789    ABCDEFGHIJ=:/.,-_\""
)

func randomText(rng *rand.Rand, n int, alphabet string) string {
	var sb strings.Builder
	for range n {
		sb.WriteByte(alphabet[rng.IntN(len(alphabet))])
	}
	return sb.String()
}

// logText is size bytes of lines such as a service logs, one in 64 of
// them quoting a secret.
func logText(rng *rand.Rand, size int, secrets []string) []byte {
	var sb strings.Builder
	for line := 0; sb.Len() < size; line++ {
		fmt.Fprintf(&sb, "2026-01-02T15:04:05Z INFO request id=%08x %s", rng.Uint32(), randomText(rng, 40+rng.IntN(80), logAlphabet))
		if line%64 == 0 {
			sb.WriteString(" token=" + secrets[rng.IntN(len(secrets))])
		}
		sb.WriteByte('\n')
	}
	return []byte(sb.String()[:size])
}

// BenchmarkUpdate is the cost of a refresh that changed one of 1,000
// secrets: the automaton is rebuilt.
func BenchmarkUpdate(b *testing.B) {
	rng := rand.New(rand.NewPCG(2, 2))
	secrets := make([]string, 1000)
	for i := range secrets {
		secrets[i] = randomText(rng, 40, secretAlphabet)
	}
	w := NewWriter(io.Discard, secrets, Replacement)
	b.ResetTimer()
	for i := range b.N {
		secrets[0] = fmt.Sprintf("rotated-%032d", i)
		w.Update(secrets)
	}
}
