package passwork

import (
	"crypto/md5"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"hash"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Bounds on the server-provided PBKDF2 parameters: a hostile or broken
// server must not be able to pin the CPU (iterations) or memory (length).
// Passwork's defaults are far below both (300,000 iterations, 64 bytes).
const (
	maxPBKDF2Iterations = 10_000_000
	maxPBKDF2Bytes      = 1024
)

// DeriveMasterKey turns a master password into the master key the API and
// the ciphertexts use: StdBase64(PBKDF2-HMAC-<digest>(password, salt,
// iter, bytes)), where options is the server's
// "pbkdf:<digest>:<iter>:<bytes>:<salt>". Fields are read by position, the
// salt being everything after the fourth colon. The digest is honoured, as
// the official JS connector does (servers send sha256, the default).
func DeriveMasterKey(password, options string) (string, error) {
	parts := strings.SplitN(options, ":", 5)
	if len(parts) != 5 || parts[0] != "pbkdf" {
		return "", errors.New("passwork: master key options are not in pbkdf:<digest>:<iterations>:<bytes>:<salt> form")
	}
	var digest func() hash.Hash
	switch strings.ToLower(parts[1]) {
	case "sha256", "":
		digest = sha256.New
	case "sha512":
		digest = sha512.New
	case "sha384":
		digest = sha512.New384
	case "sha1":
		digest = sha1.New
	default:
		return "", fmt.Errorf("passwork: master key options: digest %q is not supported (sha1, sha256, sha384, sha512)", parts[1])
	}
	iter, err := strconv.Atoi(parts[2])
	if err != nil || iter <= 0 || iter > maxPBKDF2Iterations {
		return "", fmt.Errorf("passwork: master key options: iteration count %q out of range 1..%d", parts[2], maxPBKDF2Iterations)
	}
	size, err := strconv.Atoi(parts[3])
	if err != nil || size <= 0 || size > maxPBKDF2Bytes {
		return "", fmt.Errorf("passwork: master key options: key size %q out of range 1..%d bytes", parts[3], maxPBKDF2Bytes)
	}
	key, err := pbkdf2.Key(digest, password, []byte(parts[4]), iter, size)
	if err != nil {
		return "", fmt.Errorf("passwork: derive master key: %w", err)
	}
	return base64.StdEncoding.EncodeToString(key), nil
}

// MasterKeyHash is the value of the X-Master-Key-Hash / Passwork-MasterHash
// header: lowercase hex SHA-256 of the master key string.
func MasterKeyHash(masterKey string) string {
	sum := sha256.Sum256([]byte(masterKey))
	return hex.EncodeToString(sum[:])
}

// MasterKeyHashMD5 is the header value for legacy v4 servers that report
// legacySupport.
func MasterKeyHashMD5(masterKey string) string {
	sum := md5.Sum([]byte(masterKey))
	return hex.EncodeToString(sum[:])
}

// ParsePrivateKey reads an RSA private key PEM in PKCS#1 (web client) or
// PKCS#8 (SDK) form.
func ParsePrivateKey(pemText string) (*rsa.PrivateKey, error) {
	block, _ := pem.Decode([]byte(pemText))
	if block == nil {
		return nil, errors.New("passwork: private key is not PEM")
	}
	if k, err := x509.ParsePKCS1PrivateKey(block.Bytes); err == nil {
		return k, nil
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, errors.New("passwork: private key is neither PKCS#1 nor PKCS#8 RSA")
	}
	rk, ok := k.(*rsa.PrivateKey)
	if !ok {
		return nil, errors.New("passwork: private key is not RSA")
	}
	return rk, nil
}

// UnwrapKey decrypts a base64 RSA-wrapped key (a vault key). It tries
// OAEP-SHA256 first, as the current SDK writes, then PKCS#1 v1.5, which the
// web client (JSEncrypt) writes.
func UnwrapKey(priv *rsa.PrivateKey, wrappedB64 string) (string, error) {
	ct, err := base64.StdEncoding.DecodeString(strings.TrimSpace(wrappedB64))
	if err != nil {
		return "", ErrDecrypt
	}
	if pt, err := rsa.DecryptOAEP(sha256.New(), nil, priv, ct, nil); err == nil {
		return string(pt), nil
	}
	pt, err := rsa.DecryptPKCS1v15(nil, priv, ct)
	if err != nil {
		return "", ErrDecrypt
	}
	return string(pt), nil
}

// WrapKey RSA-encrypts key for pub, as a client sharing a vault does:
// PKCS#1 v1.5 by default, OAEP-SHA256 when oaep is set.
func WrapKey(pub *rsa.PublicKey, key string, oaep bool) (string, error) {
	var ct []byte
	var err error
	if oaep {
		ct, err = rsa.EncryptOAEP(sha256.New(), rand.Reader, pub, []byte(key), nil)
	} else {
		ct, err = rsa.EncryptPKCS1v15(rand.Reader, pub, []byte(key))
	}
	if err != nil {
		return "", fmt.Errorf("passwork: wrap key: %w", err)
	}
	return base64.StdEncoding.EncodeToString(ct), nil
}

// AttachmentHash is the integrity hash Passwork stores for an attachment:
// hex SHA-256 of the bytes after each byte is read as code point U+00XX and
// UTF-8 encoded (a JavaScript binary-string artefact; bytes ≥0x80 become
// two bytes).
func AttachmentHash(data []byte) string {
	sum := sha256.Sum256(latin1ToUTF8(data))
	return hex.EncodeToString(sum[:])
}

// AttachmentHashMD5 is AttachmentHash with MD5, used by v4 servers in
// legacySupport mode.
func AttachmentHashMD5(data []byte) string {
	sum := md5.Sum(latin1ToUTF8(data))
	return hex.EncodeToString(sum[:])
}

func latin1ToUTF8(data []byte) []byte {
	out := make([]byte, 0, len(data)+len(data)/4)
	for _, b := range data {
		out = utf8.AppendRune(out, rune(b))
	}
	return out
}
