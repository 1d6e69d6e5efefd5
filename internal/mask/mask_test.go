package mask

import (
	"bytes"
	"cmp"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// reference masks in one go with strings.Replacer, secrets longest first:
// the behaviour the streaming Writer must reproduce whatever the chunking.
func reference(in string, secrets []string, repl string) string {
	var ss []string
	for _, s := range secrets {
		if len(s) >= MinLen && !slices.Contains(ss, s) {
			ss = append(ss, s)
		}
	}
	slices.SortStableFunc(ss, func(a, b string) int { return cmp.Compare(len(b), len(a)) })
	var pairs []string
	for _, s := range ss {
		pairs = append(pairs, s, repl)
	}
	if len(pairs) == 0 {
		return in
	}
	return strings.NewReplacer(pairs...).Replace(in)
}

func maskChunks(t testing.TB, chunks []string, secrets []string) string {
	t.Helper()
	var out bytes.Buffer
	w := NewWriter(&out, secrets, "***")
	for _, c := range chunks {
		n, err := w.Write([]byte(c))
		if err != nil || n != len(c) {
			t.Fatalf("Write(%q) = %d, %v", c, n, err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return out.String()
}

func TestWriter(t *testing.T) {
	tests := []struct {
		name    string
		secrets []string
		chunks  []string
		want    string
	}{
		{"no secrets", nil, []string{"hello ", "world"}, "hello world"},
		{"whole", []string{"hunter2"}, []string{"pw=hunter2\n"}, "pw=***\n"},
		{"twice", []string{"hunter2"}, []string{"hunter2hunter2 hunter2"}, "****** ***"},
		{"split", []string{"hunter2"}, []string{"pw=hun", "ter2\n"}, "pw=***\n"},
		{"split three ways", []string{"hunter2"}, []string{"hu", "nte", "r2!"}, "***!"},
		{"byte at a time", []string{"s3cret"}, strings.Split("a s3cret b", ""), "a *** b"},
		{"prefix at end is text", []string{"hunter2"}, []string{"say hunt"}, "say hunt"},
		{"false start", []string{"hunter2"}, []string{"hunthunter2"}, "hunt***"},
		{"longest wins", []string{"pass", "password"}, []string{"password pass"}, "*** ***"},
		{"longest wins split", []string{"pass", "password"}, []string{"pass", "word pas", "s"}, "*** ***"},
		{"shorter when longer fails", []string{"pass", "password"}, []string{"pass", "wore"}, "***wore"},
		{"overlap leftmost first", []string{"abcd", "cdef"}, []string{"abcdef"}, "***ef"},
		{"too short ignored", []string{"", "ab", "abc"}, []string{"abc ab"}, "abc ab"},
		{"duplicates", []string{"hunter2", "hunter2"}, []string{"hunter2"}, "***"},
		{"multiline", []string{"line1\nline2"}, []string{"x line1\n", "line2 y"}, "x *** y"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := maskChunks(t, tt.chunks, tt.secrets)
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
			if ref := reference(strings.Join(tt.chunks, ""), tt.secrets, "***"); got != ref {
				t.Errorf("got %q, reference %q", got, ref)
			}
		})
	}
}

// TestEverySplitPoint cuts the input at every byte offset around a secret.
func TestEverySplitPoint(t *testing.T) {
	secrets := []string{"correct-horse", "horse-battery"}
	in := "user=admin pass=correct-horse-battery-staple next=horse-battery!"
	want := reference(in, secrets, "***")
	for i := 0; i <= len(in); i++ {
		for j := i; j <= len(in); j++ {
			got := maskChunks(t, []string{in[:i], in[i:j], in[j:]}, secrets)
			if got != want {
				t.Fatalf("split at %d,%d: got %q, want %q", i, j, got, want)
			}
		}
	}
}

// TestHoldsBackOnlyPrefixes checks that text that cannot start a secret is
// written immediately, and a possible prefix is not.
func TestHoldsBackOnlyPrefixes(t *testing.T) {
	var out bytes.Buffer
	w := NewWriter(&out, []string{"hunter2"}, "***")
	w.Write([]byte("log line\n"))
	if out.String() != "log line\n" {
		t.Fatalf("plain text held back: %q", out.String())
	}
	w.Write([]byte("pw=hunt"))
	if out.String() != "log line\npw=" {
		t.Fatalf("after a secret prefix: %q", out.String())
	}
	w.Write([]byte("er2"))
	if out.String() != "log line\npw=***" {
		t.Fatalf("after completing the secret: %q", out.String())
	}
}

// TestUpdate: after a rotation the old value stays masked too (a child
// that was not restarted still prints it), including bytes held back
// across the Update.
func TestUpdate(t *testing.T) {
	var out bytes.Buffer
	w := NewWriter(&out, []string{"old-secret"}, "***")
	w.Write([]byte("a old-secret old-sec")) // "old-sec" is held back
	w.Update([]string{"new-secret"})
	w.Write([]byte("ret new-secret"))
	w.Close()
	if got, want := out.String(), "a *** *** ***"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// TestUpdateRetiredBound: retired values are kept up to MaxRetired, most
// recently retired first; repeating the same set retires nothing.
func TestUpdateRetiredBound(t *testing.T) {
	var out bytes.Buffer
	w := NewWriter(&out, []string{"first-value", "stable-value"}, "***")
	for range 3 * MaxRetired {
		w.Update([]string{"second-value", "stable-value"}) // no-op updates must not evict
	}
	w.Write([]byte("first-value second-value stable-value\n"))
	if got, want := out.String(), "*** *** ***\n"; got != want {
		t.Fatalf("after repeated updates: got %q, want %q", got, want)
	}
	for i := range MaxRetired {
		w.Update([]string{fmt.Sprintf("rotated-%03d", i), "stable-value"})
	}
	// Retired since: second-value and rotated-000..062, MaxRetired in
	// all; first-value was retired before them and has been dropped.
	out.Reset()
	w.Write([]byte("first-value second-value rotated-000 stable-value\n"))
	if got, want := out.String(), "first-value *** *** ***\n"; got != want {
		t.Errorf("after %d rotations: got %q, want %q", MaxRetired, got, want)
	}
}

// FuzzMask compares the streaming Writer with the one-shot reference for
// any secrets (separated by '|' in the fuzzer's string), any input and
// any way of cutting it into writes, also with an Update of the same set
// (as every unchanged daemon refresh makes) in the middle.
func FuzzMask(f *testing.F) {
	f.Add("pw=hunter2 and hunter2", "hunter2|ter2xx", uint64(5))
	f.Add("passpassword", "pass|password", uint64(3))
	f.Add("aaaaaaa", "aaaa|aaaaa", uint64(1))
	f.Add("xabcdefx abcdeX", "abcd|bcde|cdef|abcdef|defx", uint64(7))
	f.Add("she sells sea shells", "she |hell|sea shel|ells|he s", uint64(0))
	f.Fuzz(func(t *testing.T, in, blob string, seed uint64) {
		secrets := strings.Split(blob, "|")
		if len(secrets) > 64 {
			secrets = secrets[:64]
		}
		rng := rand.New(rand.NewPCG(seed, seed>>32))
		var chunks []string
		for rest := in; len(rest) > 0; {
			n := min(1+rng.IntN(24), len(rest))
			chunks = append(chunks, rest[:n])
			rest = rest[n:]
		}
		got := maskChunks(t, chunks, secrets)
		if want := reference(in, secrets, "***"); got != want {
			t.Fatalf("secrets %q, chunks %q: got %q, want %q", secrets, chunks, got, want)
		}
		for _, s := range secrets {
			if len(s) >= MinLen && !strings.Contains(s, "*") && strings.Contains(got, s) {
				// The replacement has no byte of s, so s in the output
				// would be a secret left unmasked.
				t.Fatalf("output %q contains secret %q", got, s)
			}
		}
		if len(chunks) > 1 {
			var out bytes.Buffer
			w := NewWriter(&out, secrets, "***")
			half := len(chunks) / 2
			for _, c := range chunks[:half] {
				w.Write([]byte(c))
			}
			w.Update(secrets)
			for _, c := range chunks[half:] {
				w.Write([]byte(c))
			}
			w.Close()
			if want := reference(in, secrets, "***"); out.String() != want {
				t.Fatalf("with an Update after %d chunks: got %q, want %q", half, out.String(), want)
			}
		}
	})
}

// TestAgainstReference: many random secret sets over a three-letter
// alphabet, where secrets overlap, nest and extend each other all the
// time, against the reference, cut into random writes.
func TestAgainstReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	for i := range 3000 {
		secrets := make([]string, 1+rng.IntN(6))
		for j := range secrets {
			secrets[j] = randomText(rng, MinLen+rng.IntN(5), "ab0")
		}
		in := randomText(rng, rng.IntN(60), "ab0 ")
		var chunks []string
		for rest := in; len(rest) > 0; {
			n := min(1+rng.IntN(8), len(rest))
			chunks = append(chunks, rest[:n])
			rest = rest[n:]
		}
		if got, want := maskChunks(t, chunks, secrets), reference(in, secrets, "***"); got != want {
			t.Fatalf("case %d: secrets %q, chunks %q: got %q, want %q", i, secrets, chunks, got, want)
		}
	}
}
