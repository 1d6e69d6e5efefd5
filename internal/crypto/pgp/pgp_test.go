package pgp

import (
	"bytes"
	"testing"
)

func TestDecryptUnverified(t *testing.T) {
	user, err := Generate("User", "user@example.test")
	if err != nil {
		t.Fatal(err)
	}
	other, err := Generate("Other", "other@example.test")
	if err != nil {
		t.Fatal(err)
	}
	data := []byte(`{"password":"s3cret"}`)
	for _, signer := range []*Key{nil, user, other} {
		msg, err := EncryptSign(data, user, signer)
		if err != nil {
			t.Fatal(err)
		}
		got, err := DecryptUnverified(msg, user)
		if err != nil || !bytes.Equal(got, data) {
			t.Errorf("signer %v: got %q, %v; want %q", signer != nil, got, err, data)
		}
		want, err := Decrypt(msg, user, nil)
		if err != nil || !bytes.Equal(want, got) {
			t.Errorf("Decrypt gives %q, %v; DecryptUnverified %q", want, err, got)
		}
		if _, err := DecryptUnverified(msg, other); err == nil {
			t.Error("decrypted with a key the message is not encrypted to")
		}
	}
	for _, bad := range []string{"", "not armored", "-----BEGIN PGP MESSAGE-----\n\nAAAA\n-----END PGP MESSAGE-----\n"} {
		if _, err := DecryptUnverified(bad, user); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}
