package passwork

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"strings"
	"testing"
)

func TestBase32(t *testing.T) {
	tests := []struct {
		name, in, enc string
	}{
		{"empty", "", ""},
		{"hello", "hello", "d1jprv3f"},
		{"salted prefix", "U2FsdGVkX1", "amt4cwv48xb6pp1h"},
		{"one byte", "\xff", "zw"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := EncodeBase32([]byte(tt.in)); got != tt.enc {
				t.Errorf("EncodeBase32(%q) = %q, want %q", tt.in, got, tt.enc)
			}
			if got := DecodeBase32(tt.enc); string(got) != tt.in {
				t.Errorf("DecodeBase32(%q) = %q, want %q", tt.enc, got, tt.in)
			}
		})
	}
}

func TestBase32DecodeLenient(t *testing.T) {
	tests := []struct{ in, want string }{
		{"D1JPRV3F", "hello"},              // case-insensitive
		{"d1j-prv 3f\n", "hello"},          // unknown characters skipped
		{"dijprv3f", "hello"},              // i → 1
		{"dljprv3f", "hello"},              // l → 1
		{"amt4cwv48xb6ppih", "U2FsdGVkX1"}, // i → 1 again
	}
	for _, tt := range tests {
		if got := DecodeBase32(tt.in); string(got) != tt.want {
			t.Errorf("DecodeBase32(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	// o → 0 and s → 5
	if a, b := DecodeBase32("o0s5"), DecodeBase32("0055"); !bytes.Equal(a, b) {
		t.Errorf("aliases o/s: %x != %x", a, b)
	}
}

func TestBase32RoundTrip(t *testing.T) {
	for n := 0; n < 40; n++ {
		b := make([]byte, n)
		rand.Read(b)
		if got := DecodeBase32(EncodeBase32(b)); !bytes.Equal(got, b) {
			t.Fatalf("round trip of %d bytes: got %x want %x", n, got, b)
		}
	}
}

func TestAESKnownVector(t *testing.T) {
	const want = "amt4cwv48xb6pp1h71142tud8n152pa88d234j35emr66tjfdd36rk3r5dd4evtketx3gf8"
	got, err := EncryptWithSalt("s3cret-value", "example-passphrase", [8]byte{1, 2, 3, 4, 5, 6, 7, 8})
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("EncryptWithSalt = %q, want %q", got, want)
	}
	pt, err := Decrypt(want, "example-passphrase")
	if err != nil || pt != "s3cret-value" {
		t.Errorf("Decrypt = %q, %v", pt, err)
	}
	if pt, err := Decrypt(strings.ToUpper(want), "example-passphrase"); err != nil || pt != "s3cret-value" {
		t.Errorf("Decrypt(upper) = %q, %v", pt, err)
	}
}

func TestAESRoundTripAndFailures(t *testing.T) {
	for _, pt := range []string{"", "x", "exactly16bytes!!", "ünïcødé ✓", strings.Repeat("long", 100)} {
		ct, err := Encrypt(pt, "pass")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(ct, "amt4cwv48xb6pp1h") {
			t.Errorf("ciphertext %q lacks the Salted__ prefix", ct)
		}
		got, err := Decrypt(ct, "pass")
		if err != nil || got != pt {
			t.Errorf("round trip %q: got %q, %v", pt, got, err)
		}
	}
	ct, _ := Encrypt("canary-secret", "right")
	bad := []struct{ name, ct, pass string }{
		{"wrong passphrase", ct, "wrong"},
		{"empty", "", "right"},
		{"not salted", EncodeBase32([]byte("aGVsbG8gd29ybGQgaGVsbG8gd29ybGQ=")), "right"},
		{"truncated", ct[:len(ct)-10], "right"},
		{"garbage", "!!!!", "right"},
	}
	for _, tt := range bad {
		got, err := Decrypt(tt.ct, tt.pass)
		// A wrong key can, rarely, still unpad; then the output is garbage
		// but never the plaintext.
		if err == nil && got == "canary-secret" {
			t.Errorf("%s: decrypted with the wrong input", tt.name)
		}
		if err != nil && !errors.Is(err, ErrDecrypt) {
			t.Errorf("%s: error %v is not ErrDecrypt", tt.name, err)
		}
		if err != nil && strings.Contains(err.Error(), "canary") {
			t.Errorf("%s: error leaks plaintext", tt.name)
		}
	}
}

func TestMasterKey(t *testing.T) {
	const (
		wantKey  = "yvNaCNm/2JlAucirADbQkfiBuNfWSKad0Z37yQWw769vDNtFb908RucFQsn4+QmKDoCbzf2ki6izdqp+0ZExgA=="
		wantHash = "7a7902c53c15c4bc8def44739b150414f4ad59548b5788515763986457e0d1da"
	)
	key, err := DeriveMasterKey("correct horse", "pbkdf:sha256:1000:64:examplesalt")
	if err != nil {
		t.Fatal(err)
	}
	if key != wantKey {
		t.Errorf("master key = %q, want %q", key, wantKey)
	}
	if h := MasterKeyHash(key); h != wantHash {
		t.Errorf("hash = %q, want %q", h, wantHash)
	}
	if h := MasterKeyHashMD5(key); len(h) != 32 {
		t.Errorf("md5 hash %q has wrong length", h)
	}
	// The salt may itself contain colons: everything after the 4th is salt.
	k1, _ := DeriveMasterKey("p", "pbkdf:sha256:10:32:a:b")
	if len(k1) != 44 {
		t.Errorf("salt with colon: key %q", k1)
	}
	for _, bad := range []struct{ options, wantErr string }{
		{"", "form"},
		{"scrypt:sha256:1:64:s", "form"},
		{"pbkdf:sha256:10", "form"},
		{"pbkdf:sha256:x:64:s", "iteration count"},
		{"pbkdf:sha256:0:64:s", "iteration count"},
		// Server-provided parameters are bounded, like Argon2's in envelope.
		{"pbkdf:sha256:10000001:64:s", "out of range 1..10000000"},
		{"pbkdf:sha256:99999999999:64:s", "iteration count"},
		{"pbkdf:sha256:10:0:s", "key size"},
		{"pbkdf:sha256:10:1025:s", "out of range 1..1024 bytes"},
	} {
		_, err := DeriveMasterKey("correct horse", bad.options)
		switch {
		case err == nil:
			t.Errorf("DeriveMasterKey(%q): no error", bad.options)
		case !strings.Contains(err.Error(), bad.wantErr):
			t.Errorf("DeriveMasterKey(%q) = %v, want %q", bad.options, err, bad.wantErr)
		case strings.Contains(err.Error(), "correct horse"):
			t.Errorf("error leaks the password: %v", err)
		}
	}
	// The bounds themselves are accepted.
	if _, err := DeriveMasterKey("p", "pbkdf:sha256:1:1024:s"); err != nil {
		t.Errorf("1024-byte key: %v", err)
	}
	// The digest is honoured (vectors from Python's hashlib.pbkdf2_hmac).
	for _, tt := range []struct{ options, want string }{
		{"pbkdf:sha512:1000:64:examplesalt", "nbda74woBgjVJhV1apYlJNyQTPajX0O5iOBUIfW4ajB/K6ndrMdg9jba9Pob/1DSVA1MISx2ANSMFLtnhifqDg=="},
		{"pbkdf:SHA1:1000:32:examplesalt", "A3RnFPWdic5huU1MywYLpBAlwD10rn+WvdJw8wdeDbI="},
		{"pbkdf::1000:64:examplesalt", wantKey}, // no digest: SHA-256
	} {
		if got, err := DeriveMasterKey("correct horse", tt.options); err != nil || got != tt.want {
			t.Errorf("DeriveMasterKey(%q) = %q, %v; want %q", tt.options, got, err, tt.want)
		}
	}
	if _, err := DeriveMasterKey("p", "pbkdf:md5:10:32:s"); err == nil || !strings.Contains(err.Error(), "not supported") {
		t.Errorf("unknown digest: %v", err)
	}
}

func TestAttachmentHash(t *testing.T) {
	h := AttachmentHash([]byte{0x41, 0xff})
	if !strings.HasPrefix(h, "1f8f1bbd") || !strings.HasSuffix(h, "e1bd13") {
		t.Errorf("AttachmentHash(41 ff) = %s, want 1f8f1bbd…e1bd13", h)
	}
	if strings.HasPrefix(h, "f3c43500") {
		t.Errorf("AttachmentHash is the plain SHA-256")
	}
	// ASCII input hashes like plain SHA-256 of the same bytes.
	if got := AttachmentHash([]byte("abc")); got != "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" {
		t.Errorf("AttachmentHash(abc) = %s", got)
	}
	if got := AttachmentHashMD5([]byte("abc")); got != "900150983cd24fb0d6963f7d28e17f72" {
		t.Errorf("AttachmentHashMD5(abc) = %s", got)
	}
}

func TestRSAWrap(t *testing.T) {
	priv, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	pkcs1 := string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(priv)}))
	p8, _ := x509.MarshalPKCS8PrivateKey(priv)
	pkcs8 := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: p8}))
	for _, form := range []struct{ name, pem string }{{"pkcs1", pkcs1}, {"pkcs8", pkcs8}} {
		k, err := ParsePrivateKey(form.pem)
		if err != nil {
			t.Fatalf("%s: %v", form.name, err)
		}
		for _, oaep := range []bool{false, true} {
			w, err := WrapKey(&priv.PublicKey, "vault-key-100-chars", oaep)
			if err != nil {
				t.Fatal(err)
			}
			got, err := UnwrapKey(k, w)
			if err != nil || got != "vault-key-100-chars" {
				t.Errorf("%s oaep=%v: got %q, %v", form.name, oaep, got, err)
			}
		}
	}
	if _, err := ParsePrivateKey("not a pem"); err == nil {
		t.Error("ParsePrivateKey accepted garbage")
	}
	if _, err := UnwrapKey(priv, "!!notbase64"); !errors.Is(err, ErrDecrypt) {
		t.Errorf("UnwrapKey(garbage) = %v", err)
	}
}

func FuzzBase32Decode(f *testing.F) {
	for _, s := range []string{"", "d1jprv3f", "amt4cwv48xb6pp1h", "OILS", "\xff\x00zz", "-- --"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b := DecodeBase32(s)
		// Re-encoding the decoded bytes and decoding again is stable.
		if got := DecodeBase32(EncodeBase32(b)); !bytes.Equal(got, b) {
			t.Fatalf("unstable round trip for %q", s)
		}
	})
}

func FuzzDecryptAESpw(f *testing.F) {
	f.Add("amt4cwv48xb6pp1h71142tud8n152pa88d234j35emr66tjfdd36rk3r5dd4evtketx3gf8", "example-passphrase")
	f.Add("amt4cwv48xb6pp1h", "")
	f.Add("", "x")
	f.Add("amt4cwv48xb6pp1h71142tud8n152pa88d234j", "example-passphrase")
	f.Fuzz(func(t *testing.T, ct, pass string) {
		_, _ = Decrypt(ct, pass) // must not panic
	})
}

// Decrypt runs once per value and item key on every refresh that meets
// new ciphertext: the key derivation and the CBC pass allocate nothing,
// which leaves the base32 and base64 buffers, the cipher, the CBC mode
// with its IV and the result (13 allocations before).
func TestDecryptAllocations(t *testing.T) {
	key := strings.Repeat("k", 100) // an item key's length
	ct, err := Encrypt("pw-00001-xxxxxxxxxxxxxxxxxxxxxxxx", key)
	if err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := Decrypt(ct, key); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 6 {
		t.Errorf("Decrypt allocates %v times, want at most 6", allocs)
	}
}
