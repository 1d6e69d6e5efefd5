package envelope

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"slices"
	"strings"
	"testing"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// RFC 3394 §4.1 (128-bit KEK, 128-bit key) and §4.6 (256-bit KEK, 256-bit
// key, which is the 40-byte form tolerated for wrapped_item_key).
func TestKeyWrapRFC3394(t *testing.T) {
	tests := []struct{ name, kek, key, wrapped string }{
		{"4.1", "000102030405060708090A0B0C0D0E0F", "00112233445566778899AABBCCDDEEFF",
			"1FA68B0A8112B447 AEF34BD8FB5A7B82 9D3E862371D2CFE5"},
		{"4.6", "000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F",
			"00112233445566778899AABBCCDDEEFF000102030405060708090A0B0C0D0E0F",
			"28C9F404C4B810F4 CBCCB35CFB87F826 3F5786E2D80ED326 CBC7F0E71A99F43B FB988B9B7A02DD21"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			kek, key, want := unhex(t, tc.kek), unhex(t, tc.key), unhex(t, tc.wrapped)
			got, err := KeyWrap(kek, key)
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("KeyWrap = %X, %v; want %X", got, err, want)
			}
			back, err := KeyUnwrap(kek, want)
			if err != nil || !bytes.Equal(back, key) {
				t.Fatalf("KeyUnwrap = %X, %v; want %X", back, err, key)
			}
			bad := slices.Clone(want)
			bad[len(bad)-1] ^= 1
			if _, err := KeyUnwrap(kek, bad); !errors.Is(err, ErrAuth) {
				t.Fatalf("KeyUnwrap(altered) err = %v, want ErrAuth", err)
			}
		})
	}
}

func TestDecodeBase64Variants(t *testing.T) {
	data := []byte{0xfb, 0xff, 0xfe, 0x01, 0x02}
	for _, s := range []string{
		base64.StdEncoding.EncodeToString(data),
		base64.RawStdEncoding.EncodeToString(data),
		base64.URLEncoding.EncodeToString(data),
		base64.RawURLEncoding.EncodeToString(data),
		" " + base64.StdEncoding.EncodeToString(data) + "\n",
	} {
		got, err := DecodeBase64(s)
		if err != nil || !bytes.Equal(got, data) {
			t.Errorf("DecodeBase64(%q) = %x, %v", s, got, err)
		}
	}
	for _, s := range []string{"!!!", "ab+c-d", "a"} {
		if _, err := DecodeBase64(s); err == nil {
			t.Errorf("DecodeBase64(%q) succeeded", s)
		}
	}
}

func testKey(b byte) []byte { return bytes.Repeat([]byte{b}, KeySize) }

func TestSealOpen(t *testing.T) {
	vk := testKey(7)
	payload := []byte(`{"password":"hunter2"}`)
	for name, seal := range map[string]func([]byte, []byte) (string, string, error){"gcm": Seal, "aes-kw": SealKW} {
		t.Run(name, func(t *testing.T) {
			w, d, err := seal(vk, payload)
			if err != nil {
				t.Fatal(err)
			}
			raw, _ := DecodeBase64(w)
			if want := map[string]int{"gcm": 60, "aes-kw": 40}[name]; len(raw) != want {
				t.Fatalf("wrapped_item_key is %d bytes, want %d", len(raw), want)
			}
			if !strings.HasSuffix(w, "=") && len(raw)%3 != 0 {
				t.Fatalf("wrapped_item_key %q is not padded standard base64", w)
			}
			got, err := Open(vk, w, d)
			if err != nil || !bytes.Equal(got, payload) {
				t.Fatalf("Open = %q, %v", got, err)
			}
			if _, err := Open(testKey(8), w, d); !errors.Is(err, ErrAuth) {
				t.Fatalf("Open with wrong key: err = %v, want ErrAuth", err)
			}
			rd, _ := DecodeBase64(d)
			rd[len(rd)/2] ^= 0x80
			if _, err := Open(vk, w, EncodeBase64(rd)); !errors.Is(err, ErrAuth) {
				t.Fatalf("Open tampered data: err = %v, want ErrAuth", err)
			}
		})
	}
}

func TestOpenStructuralErrors(t *testing.T) {
	vk := testKey(1)
	w, d, _ := Seal(vk, []byte("{}"))
	tests := []struct{ name, w, d, want string }{
		{"short wrap", EncodeBase64(make([]byte, 59)), d, "59 bytes"},
		{"bad wrap b64", "%%%", d, "wrapped_item_key: invalid base64"},
		{"short data", w, EncodeBase64(make([]byte, 27)), "27 bytes, want at least 28"},
		{"bad data b64", w, "***", "encrypted_data: invalid base64"},
	}
	for _, tc := range tests {
		_, err := Open(vk, tc.w, tc.d)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", tc.name, err, tc.want)
		}
	}
}

func TestDeriveVaultKey(t *testing.T) {
	p := KDFParams{MemoryKiB: 64, Iterations: 1, Parallelism: 1}
	salt := []byte("0123456789abcdef")
	k1, err := DeriveVaultKey("pässword", salt, p)
	if err != nil || len(k1) != KeySize {
		t.Fatalf("DeriveVaultKey = %d bytes, %v", len(k1), err)
	}
	k2, _ := DeriveVaultKey("pässword", salt, p)
	k3, _ := DeriveVaultKey("pässword", []byte("0123456789abcdeX"), p)
	k4, _ := DeriveVaultKey("pässword", salt, KDFParams{MemoryKiB: 64, Iterations: 2, Parallelism: 1})
	if !bytes.Equal(k1, k2) || bytes.Equal(k1, k3) || bytes.Equal(k1, k4) {
		t.Fatal("derivation is not a deterministic function of password, salt and parameters")
	}
	bad := []struct {
		p    KDFParams
		salt []byte
	}{
		{KDFParams{64, 1, 0}, salt},
		{KDFParams{64, 0, 1}, salt},
		{KDFParams{16, 1, 4}, salt},
		{KDFParams{4 << 20, 1, 1}, salt},
		// What a hostile server asked for: 1 GiB, 64 passes.
		{KDFParams{1 << 20, 64, 4}, salt},
		{KDFParams{MaxMemoryKiB + 1, 1, 1}, salt},
		{KDFParams{64, MaxIterations + 1, 1}, salt},
		{KDFParams{1024, 1, MaxParallelism + 1}, salt},
		{p, []byte("short")},
	}
	for _, b := range bad {
		if _, err := DeriveVaultKey("pw", b.salt, b.p); err == nil {
			t.Errorf("DeriveVaultKey(%+v, %d-byte salt) succeeded", b.p, len(b.salt))
		}
	}
	for _, p := range []KDFParams{DefaultKDF(), FallbackKDF()} {
		if err := p.Validate(); err != nil {
			t.Fatalf("documented profile %+v rejected: %v", p, err)
		}
	}
}

func TestBlindIndexHelpers(t *testing.T) {
	if got, want := SearchTokens("Netflix  netflix TV"), []string{"net", "netf", "netfl", "netfli", "netflix"}; !slices.Equal(got, want) {
		t.Errorf("SearchTokens = %q, want %q", got, want)
	}
	for in, want := range map[string]string{
		"https://www.login.example.co.uk:8443/x": "example.co.uk",
		"WWW.Netflix.com":                        "netflix.com",
		"http://127.0.0.1:3000/":                 "127.0.0.1",
		"":                                       "",
	} {
		if got := RegistrableDomain(in); got != want {
			t.Errorf("RegistrableDomain(%q) = %q, want %q", in, got, want)
		}
	}
	bi, err := BlindIndexKey(testKey(3))
	if err != nil {
		t.Fatal(err)
	}
	a, b := BlindIndex(bi, "name", " Netflix "), BlindIndex(bi, "name", "netflix")
	if a != b || len(a) != 64 || a == BlindIndex(bi, "username", "netflix") || BlindIndex(bi, "name", "") != "" {
		t.Errorf("blind indexes: %q %q", a, b)
	}
}

// FuzzDecodeEnvelope feeds arbitrary strings to the decoding path the client
// runs on server data: it must return an error, never panic.
func FuzzDecodeEnvelope(f *testing.F) {
	vk := testKey(9)
	w, d, _ := Seal(vk, []byte(`{"password":"x"}`))
	wk, dk, _ := SealKW(vk, []byte(`{}`))
	f.Add(w, d)
	f.Add(wk, dk)
	f.Add("", "")
	f.Add("====", "-_-_")
	f.Add(EncodeBase64(make([]byte, 60)), EncodeBase64(make([]byte, 28)))
	f.Add(EncodeBase64(make([]byte, 40)), EncodeBase64(make([]byte, 12)))
	f.Add(strings.TrimRight(w, "="), strings.NewReplacer("+", "-", "/", "_").Replace(d))
	f.Fuzz(func(t *testing.T, wrapped, data string) {
		pt, err := Open(vk, wrapped, data)
		if err == nil && pt == nil {
			t.Fatal("nil plaintext without error")
		}
		DecodeBase64(data)
		Decrypt(vk, data)
		KeyUnwrap(vk, []byte(wrapped))
	})
}

func BenchmarkDecrypt(b *testing.B) {
	vk := testKey(5)
	payload := bytes.Repeat([]byte("a"), 1024)
	w, d, err := Seal(vk, payload)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(payload)))
	for b.Loop() {
		if _, err := Open(vk, w, d); err != nil {
			b.Fatal(err)
		}
	}
}
