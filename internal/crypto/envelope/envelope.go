// Package envelope implements PassAgent's V3 client-side encryption: a vault
// key derived from the master password with Argon2id, a random item key per
// entry wrapped with the vault key, and the entry payload sealed with the
// item key (AES-256-GCM). The byte layouts are the assumed contract written
// down in docs/passagent.md; the public documentation does not give them.
//
// Every error here is about structure (lengths, encodings) or
// authentication; none carries key material or plaintext.
package envelope

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// KeySize is the size of vault keys and item keys (AES-256).
const KeySize = 32

const (
	nonceSize    = 12 // AES-GCM nonce, as WebCrypto clients use
	tagSize      = 16
	gcmWrapSize  = nonceSize + KeySize + tagSize // 60: nonce || ct || tag
	kwWrapSize   = KeySize + 8                   // 40: RFC 3394 AES-KW of a 32-byte key
	minSealedLen = nonceSize + tagSize           // 28: empty plaintext
)

// ErrAuth reports that a ciphertext failed authentication: the key is wrong
// or the bytes were changed.
var ErrAuth = errors.New("message authentication failed")

// DecodeBase64 accepts standard base64 with or without padding and the
// URL-safe alphabet with or without padding; surrounding whitespace is
// ignored. Real clients use btoa (standard, padded) but tolerance costs
// nothing here.
func DecodeBase64(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	s = strings.TrimRight(s, "=")
	enc := base64.RawStdEncoding
	if strings.ContainsAny(s, "-_") {
		enc = base64.RawURLEncoding
	}
	b, err := enc.DecodeString(s)
	if err != nil {
		// The error names an offset, never the input bytes.
		return nil, fmt.Errorf("invalid base64: %w", err)
	}
	return b, nil
}

// EncodeBase64 is the encoding the official web client produces (btoa).
func EncodeBase64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// UnwrapItemKey recovers an item key from wrapped_item_key. 60 bytes are
// nonce || AES-256-GCM(vaultKey, itemKey) || tag; 40 bytes are tolerated as
// RFC 3394 AES-KW (which PassAgent uses for family keys). Any other length
// is an error. A wrong vault key gives ErrAuth.
func UnwrapItemKey(vaultKey []byte, wrapped string) ([]byte, error) {
	raw, err := DecodeBase64(wrapped)
	if err != nil {
		return nil, fmt.Errorf("wrapped_item_key: %w", err)
	}
	switch len(raw) {
	case gcmWrapSize:
		key, err := openGCM(vaultKey, raw)
		if err != nil {
			return nil, fmt.Errorf("wrapped_item_key: %w", err)
		}
		return key, nil
	case kwWrapSize:
		key, err := KeyUnwrap(vaultKey, raw)
		if err != nil {
			return nil, fmt.Errorf("wrapped_item_key: %w", err)
		}
		return key, nil
	default:
		return nil, fmt.Errorf("wrapped_item_key: %d bytes, want %d (AES-GCM) or %d (AES-KW)", len(raw), gcmWrapSize, kwWrapSize)
	}
}

// Decrypt opens encrypted_data: nonce || AES-256-GCM(itemKey, payload) || tag,
// without additional data.
func Decrypt(itemKey []byte, data string) ([]byte, error) {
	raw, err := DecodeBase64(data)
	if err != nil {
		return nil, fmt.Errorf("encrypted_data: %w", err)
	}
	if len(raw) < minSealedLen {
		return nil, fmt.Errorf("encrypted_data: %d bytes, want at least %d", len(raw), minSealedLen)
	}
	pt, err := openGCM(itemKey, raw)
	if err != nil {
		return nil, fmt.Errorf("encrypted_data: %w", err)
	}
	return pt, nil
}

// Open unwraps the item key and decrypts the payload of one V3 record.
func Open(vaultKey []byte, wrappedItemKey, encryptedData string) ([]byte, error) {
	itemKey, err := UnwrapItemKey(vaultKey, wrappedItemKey)
	if err != nil {
		return nil, err
	}
	return Decrypt(itemKey, encryptedData)
}

// Seal encrypts a payload the way the official client creates a V3 record:
// a fresh random item key, wrapped with AES-256-GCM under the vault key.
func Seal(vaultKey, payload []byte) (wrappedItemKey, encryptedData string, err error) {
	return seal(vaultKey, payload, sealGCM)
}

// SealKW is Seal with the item key wrapped by AES-KW (the tolerated 40-byte
// form), for emulators that exercise that path.
func SealKW(vaultKey, payload []byte) (wrappedItemKey, encryptedData string, err error) {
	return seal(vaultKey, payload, KeyWrap)
}

func seal(vaultKey, payload []byte, wrap func(key, itemKey []byte) ([]byte, error)) (string, string, error) {
	itemKey := make([]byte, KeySize)
	rand.Read(itemKey)
	w, err := wrap(vaultKey, itemKey)
	if err != nil {
		return "", "", err
	}
	d, err := Encrypt(itemKey, payload)
	if err != nil {
		return "", "", err
	}
	return EncodeBase64(w), d, nil
}

// Encrypt seals plaintext under key as base64(nonce || ct || tag).
func Encrypt(key, plaintext []byte) (string, error) {
	b, err := sealGCM(key, plaintext)
	if err != nil {
		return "", err
	}
	return EncodeBase64(b), nil
}

func newGCM(key []byte) (cipher.AEAD, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("key is %d bytes, want %d", len(key), KeySize)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

func sealGCM(key, plaintext []byte) ([]byte, error) {
	aead, err := newGCM(key)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, nonceSize, nonceSize+len(plaintext)+tagSize)
	rand.Read(nonce)
	return aead.Seal(nonce, nonce, plaintext, nil), nil
}

func openGCM(key, sealed []byte) ([]byte, error) {
	aead, err := newGCM(key)
	if err != nil {
		return nil, err
	}
	pt, err := aead.Open(nil, sealed[:nonceSize], sealed[nonceSize:], nil)
	if err != nil {
		return nil, ErrAuth
	}
	return pt, nil
}
