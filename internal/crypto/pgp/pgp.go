// Package pgp is the small slice of OpenPGP the Passbolt provider needs,
// on top of github.com/ProtonMail/gopenpgp/v3 with its default profile
// (v4 keys, Curve25519, AES-256, no AEAD) — the format Passbolt uses.
//
// Errors from this package never contain plaintext or key material.
package pgp

import (
	"errors"
	"fmt"
	"strings"

	"github.com/ProtonMail/gopenpgp/v3/crypto"
)

// Key is an OpenPGP key (public, or private and unlocked).
type Key = crypto.Key

// ParsePrivateKey reads an armored private key and unlocks it with
// passphrase. An unlocked key with an empty passphrase is accepted as is.
func ParsePrivateKey(armored string, passphrase []byte) (*Key, error) {
	k, err := crypto.NewKeyFromArmored(strings.TrimSpace(armored))
	if err != nil {
		return nil, errors.New("pgp: private key is not a valid armored OpenPGP key")
	}
	if !k.IsPrivate() {
		return nil, errors.New("pgp: key is a public key, a private key is needed")
	}
	locked, err := k.IsLocked()
	if err != nil {
		return nil, fmt.Errorf("pgp: inspecting private key: %w", err)
	}
	if !locked {
		return k, nil
	}
	if len(passphrase) == 0 {
		return nil, errors.New("pgp: private key is protected by a passphrase but none was given")
	}
	u, err := k.Unlock(passphrase)
	if err != nil {
		return nil, errors.New("pgp: wrong passphrase for private key")
	}
	return u, nil
}

// ParsePublicKey reads an armored public (or private) key and returns its
// public part.
func ParsePublicKey(armored string) (*Key, error) {
	k, err := crypto.NewKeyFromArmored(strings.TrimSpace(armored))
	if err != nil {
		return nil, errors.New("pgp: not a valid armored OpenPGP key")
	}
	if k.IsPrivate() {
		if k, err = k.ToPublic(); err != nil {
			return nil, fmt.Errorf("pgp: extracting public key: %w", err)
		}
	}
	return k, nil
}

// Fingerprint returns the key's fingerprint as upper-case hex, the form
// Passbolt shows and sends as the GPGAuth keyid.
func Fingerprint(k *Key) string {
	return strings.ToUpper(k.GetFingerprint())
}

// SameFingerprint compares fingerprints ignoring case and spaces, so a pin
// copied from a UI with grouping ("ABCD 1234 …") still matches.
func SameFingerprint(a, b string) bool {
	norm := func(s string) string { return strings.ToUpper(strings.ReplaceAll(s, " ", "")) }
	return norm(a) != "" && norm(a) == norm(b)
}

// Decrypt decrypts an armored message with key. When signer is non-nil the
// message must carry a valid signature by it.
func Decrypt(armored string, key, signer *Key) ([]byte, error) {
	b := crypto.PGP().Decryption().DecryptionKey(key)
	if signer != nil {
		b = b.VerificationKey(signer)
	}
	h, err := b.New()
	if err != nil {
		return nil, fmt.Errorf("pgp: %w", err)
	}
	res, err := h.Decrypt([]byte(armored), crypto.Armor)
	if err != nil {
		return nil, errCannotDecrypt
	}
	if signer != nil {
		if err := res.SignatureError(); err != nil {
			return nil, errors.New("pgp: message signature does not verify against the expected key")
		}
	}
	return res.Bytes(), nil
}

// DecryptUnverified decrypts an armored message with key and checks no
// signature, for callers that would discard the result of the check.
// Decrypt with a nil signer still verifies a message signed by key itself
// (gopenpgp checks signatures against the decryption keyring too), which is
// about half of its cost for the messages Passbolt clients write: they
// are signed by their author. Here the session key is decrypted with key
// and the data with the session key alone, so no signature key is known.
// A caller decrypting many messages with one key uses a Decrypter.
func DecryptUnverified(armored string, key *Key) ([]byte, error) {
	d, err := NewDecrypter(key)
	if err != nil {
		return nil, err
	}
	return d.DecryptUnverified(armored)
}

// Decrypter decrypts messages with one private key, as DecryptUnverified
// does, with the key's keyring built (and its unlocked state checked)
// once rather than per message. It is safe for concurrent use: the
// keyring is only read.
type Decrypter struct {
	ring        *crypto.KeyRing
	fingerprint string
}

// NewDecrypter prepares key (private and unlocked) for decrypting.
func NewDecrypter(key *Key) (*Decrypter, error) {
	ring, err := crypto.NewKeyRing(key)
	if err != nil {
		return nil, fmt.Errorf("pgp: %w", err)
	}
	return &Decrypter{ring: ring, fingerprint: Fingerprint(key)}, nil
}

// Fingerprint is the key's fingerprint, as Fingerprint returns it.
func (d *Decrypter) Fingerprint() string { return d.fingerprint }

// DecryptUnverified is DecryptUnverified with the Decrypter's key.
func (d *Decrypter) DecryptUnverified(armored string) ([]byte, error) {
	msg, err := crypto.NewPGPMessageFromArmored(armored)
	if err != nil {
		return nil, errCannotDecrypt
	}
	pgp := crypto.PGP()
	h, err := pgp.Decryption().DecryptionKeys(d.ring).New()
	if err != nil {
		return nil, fmt.Errorf("pgp: %w", err)
	}
	sk, err := h.DecryptSessionKey(msg.BinaryKeyPacket())
	if err != nil {
		return nil, errCannotDecrypt
	}
	defer sk.Clear()
	dh, err := pgp.Decryption().SessionKey(sk).New()
	if err != nil {
		return nil, fmt.Errorf("pgp: %w", err)
	}
	res, err := dh.Decrypt(msg.BinaryDataPacket(), crypto.Bytes)
	if err != nil {
		return nil, errCannotDecrypt
	}
	return res.Bytes(), nil
}

var errCannotDecrypt = errors.New("pgp: cannot decrypt message (not encrypted to this key, or corrupt)")

// EncryptSign encrypts data to recipient and, when signer is non-nil, signs
// it; the result is armored.
func EncryptSign(data []byte, recipient, signer *Key) (string, error) {
	b := crypto.PGP().Encryption().Recipient(recipient)
	if signer != nil {
		b = b.SigningKey(signer)
	}
	h, err := b.New()
	if err != nil {
		return "", fmt.Errorf("pgp: %w", err)
	}
	msg, err := h.Encrypt(data)
	if err != nil {
		return "", fmt.Errorf("pgp: encrypting: %w", err)
	}
	return msg.Armor()
}

// Generate creates a new private key with the default profile (Curve25519,
// fast enough to make per test). For emulators and tests.
func Generate(name, email string) (*Key, error) {
	k, err := crypto.PGP().KeyGeneration().AddUserId(name, email).New().GenerateKey()
	if err != nil {
		return nil, fmt.Errorf("pgp: generating key: %w", err)
	}
	return k, nil
}

// ArmorPrivate armors a private key, locked with passphrase when it is
// non-empty.
func ArmorPrivate(k *Key, passphrase []byte) (string, error) {
	if len(passphrase) > 0 {
		locked, err := crypto.PGP().LockKey(k, passphrase)
		if err != nil {
			return "", fmt.Errorf("pgp: locking key: %w", err)
		}
		k = locked
	}
	return k.Armor()
}

// ArmorPublic armors the public part of k.
func ArmorPublic(k *Key) (string, error) {
	return k.GetArmoredPublicKey()
}

// EncryptedTo reports whether an armored message is encrypted to k (its
// primary key or one of its subkeys), without decrypting it: what a server
// that holds only public keys can check about a ciphertext it is given.
// It is false for anything that is not an armored OpenPGP message.
func EncryptedTo(armored string, k *Key) bool {
	msg, err := crypto.NewPGPMessageFromArmored(strings.TrimSpace(armored))
	if err != nil {
		return false
	}
	ids, ok := msg.EncryptionKeyIDs()
	if !ok {
		return false
	}
	mine := map[uint64]bool{k.GetKeyID(): true}
	for _, sk := range k.GetEntity().Subkeys {
		mine[sk.PublicKey.KeyId] = true
	}
	for _, id := range ids {
		if mine[id] {
			return true
		}
	}
	return false
}
