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
	key, iv := evpBytesToKey(passphrase, salt[:])
	block, err := aes.NewCipher(key[:])
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
	cipher.NewCBCEncrypter(block, iv[:]).CryptBlocks(ct, ct)
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
	key, iv := evpBytesToKey(passphrase, blob[8:16])
	block, err := aes.NewCipher(key[:])
	if err != nil {
		return "", ErrDecrypt
	}
	// In place: blob is this call's own copy.
	pt := blob[16:]
	cipher.NewCBCDecrypter(block, iv[:]).CryptBlocks(pt, pt)
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
// producing a 32-byte AES-256 key and a 16-byte IV: three MD5 blocks,
// D_i = MD5(D_{i-1} || pass || salt). MD5 here is the format's choice, not
// ours. The input is built in a stack buffer for the usual passphrase
// length (item keys are 100 characters), so a decryption costs no
// allocation here.
func evpBytesToKey(pass string, salt []byte) (key [32]byte, iv [16]byte) {
	var stack [md5.Size + 128 + 8]byte
	in := append(append(stack[:md5.Size], pass...), salt...)
	d1 := md5.Sum(in[md5.Size:])
	copy(in, d1[:])
	d2 := md5.Sum(in)
	copy(in, d2[:])
	d3 := md5.Sum(in)
	copy(key[:16], d1[:])
	copy(key[16:], d2[:])
	return key, d3
}
