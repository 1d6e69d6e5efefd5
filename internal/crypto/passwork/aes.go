package passwork

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/md5"
	"crypto/rand"
	"encoding/base64"
	"errors"
)

// ErrDecrypt is returned (wrapped) for any ciphertext that does not decrypt:
// wrong passphrase, corrupted data or not Passwork's format. It carries no
// detail on purpose, so nothing about the data leaks into messages.
var ErrDecrypt = errors.New("cannot decrypt (wrong key or corrupted data)")

const saltedPrefix = "Salted__"

// Encrypt is CryptoJS AES.encrypt(plaintext, passphrase) wrapped in
// Passwork's base32 — the "AESpw" primitive every Passwork value uses.
func Encrypt(plaintext, passphrase string) (string, error) {
	var salt [8]byte
	if _, err := rand.Read(salt[:]); err != nil {
		return "", err
	}
	return EncryptWithSalt(plaintext, passphrase, salt)
}

// EncryptWithSalt is Encrypt with a fixed salt, for test vectors.
func EncryptWithSalt(plaintext, passphrase string, salt [8]byte) (string, error) {
	key, iv := evpBytesToKey([]byte(passphrase), salt[:])
	block, err := aes.NewCipher(key)
	if err != nil {
		return "", err
	}
	pad := aes.BlockSize - len(plaintext)%aes.BlockSize
	buf := make([]byte, 0, 16+len(plaintext)+pad)
	buf = append(buf, saltedPrefix...)
	buf = append(buf, salt[:]...)
	buf = append(buf, plaintext...)
	buf = append(buf, bytes.Repeat([]byte{byte(pad)}, pad)...)
	ct := buf[16:]
	cipher.NewCBCEncrypter(block, iv).CryptBlocks(ct, ct)
	b64 := base64.StdEncoding.EncodeToString(buf)
	return EncodeBase32([]byte(b64)), nil
}

// Decrypt reverses Encrypt. Any failure is ErrDecrypt.
func Decrypt(ciphertext, passphrase string) (string, error) {
	b64 := DecodeBase32(ciphertext)
	blob := make([]byte, base64.StdEncoding.DecodedLen(len(b64)))
	n, err := base64.StdEncoding.Decode(blob, b64)
	if err != nil {
		return "", ErrDecrypt
	}
	blob = blob[:n]
	if len(blob) < 16+aes.BlockSize || string(blob[:8]) != saltedPrefix || (len(blob)-16)%aes.BlockSize != 0 {
		return "", ErrDecrypt
	}
	key, iv := evpBytesToKey([]byte(passphrase), blob[8:16])
	block, err := aes.NewCipher(key)
	if err != nil {
		return "", ErrDecrypt
	}
	pt := make([]byte, len(blob)-16)
	cipher.NewCBCDecrypter(block, iv).CryptBlocks(pt, blob[16:])
	pad := int(pt[len(pt)-1])
	if pad == 0 || pad > aes.BlockSize {
		return "", ErrDecrypt
	}
	for _, p := range pt[len(pt)-pad:] {
		if int(p) != pad {
			return "", ErrDecrypt
		}
	}
	return string(pt[:len(pt)-pad]), nil
}

// evpBytesToKey is OpenSSL's EVP_BytesToKey with MD5 and one iteration,
// producing a 32-byte AES-256 key and a 16-byte IV. MD5 here is the format's
// choice, not ours.
func evpBytesToKey(pass, salt []byte) (key, iv []byte) {
	var out, prev []byte
	for len(out) < 48 {
		h := md5.New()
		h.Write(prev)
		h.Write(pass)
		h.Write(salt)
		prev = h.Sum(nil)
		out = append(out, prev...)
	}
	return out[:32], out[32:48]
}
