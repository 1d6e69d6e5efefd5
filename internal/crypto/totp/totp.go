// Package totp computes RFC 6238 time-based one-time passwords from the
// forms password managers store them in: a bare base32 secret or an
// otpauth:// URI.
package totp

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base32"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Params describe one TOTP generator.
type Params struct {
	Secret    []byte
	Algorithm string // "SHA1", "SHA256" or "SHA512"
	Digits    int    // 6 to 10
	Period    time.Duration
}

// Parse reads a base32 secret (spaces and case ignored, padding optional) or
// an otpauth://totp/…?secret=…&algorithm=…&digits=…&period=… URI.
// Errors never include the secret.
func Parse(s string) (Params, error) {
	p := Params{Algorithm: "SHA1", Digits: 6, Period: 30 * time.Second}
	s = strings.TrimSpace(s)
	secret := s
	if strings.HasPrefix(strings.ToLower(s), "otpauth://") {
		u, err := url.Parse(s)
		if err != nil {
			return p, errors.New("totp: malformed otpauth URI")
		}
		if !strings.EqualFold(u.Host, "totp") {
			return p, fmt.Errorf("totp: unsupported otpauth type %q (only totp)", u.Host)
		}
		q := u.Query()
		secret = q.Get("secret")
		if a := q.Get("algorithm"); a != "" {
			p.Algorithm = strings.ToUpper(a)
		}
		if d := q.Get("digits"); d != "" {
			n, err := strconv.Atoi(d)
			if err != nil {
				return p, fmt.Errorf("totp: bad digits %q", d)
			}
			p.Digits = n
		}
		if per := q.Get("period"); per != "" {
			n, err := strconv.Atoi(per)
			if err != nil || n <= 0 {
				return p, fmt.Errorf("totp: bad period %q", per)
			}
			p.Period = time.Duration(n) * time.Second
		}
	}
	key, err := DecodeSecret(secret)
	if err != nil {
		return p, err
	}
	p.Secret = key
	if p.Digits < 6 || p.Digits > 10 {
		return p, fmt.Errorf("totp: digits must be 6 to 10, got %d", p.Digits)
	}
	if _, err := newHash(p.Algorithm); err != nil {
		return p, err
	}
	return p, nil
}

// DecodeSecret decodes an RFC 4648 base32 secret, ignoring case, spaces,
// dashes and missing padding.
func DecodeSecret(s string) ([]byte, error) {
	s = strings.ToUpper(strings.NewReplacer(" ", "", "-", "", "=", "").Replace(s))
	if s == "" {
		return nil, errors.New("totp: empty secret")
	}
	key, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(s)
	if err != nil {
		return nil, errors.New("totp: secret is not valid base32")
	}
	return key, nil
}

// Code returns the one-time password valid at t.
func (p Params) Code(t time.Time) (string, error) {
	newH, err := newHash(p.Algorithm)
	if err != nil {
		return "", err
	}
	period := p.Period
	if period <= 0 {
		period = 30 * time.Second
	}
	counter := uint64(t.Unix()) / uint64(period/time.Second)
	var msg [8]byte
	binary.BigEndian.PutUint64(msg[:], counter)
	mac := hmac.New(newH, p.Secret)
	mac.Write(msg[:])
	sum := mac.Sum(nil)
	off := sum[len(sum)-1] & 0x0f
	bin := binary.BigEndian.Uint32(sum[off:off+4]) & 0x7fffffff
	mod := uint64(1)
	for i := 0; i < p.Digits; i++ {
		mod *= 10
	}
	return fmt.Sprintf("%0*d", p.Digits, uint64(bin)%mod), nil
}

// Generate parses s and returns the code valid at t.
func Generate(s string, t time.Time) (string, error) {
	p, err := Parse(s)
	if err != nil {
		return "", err
	}
	return p.Code(t)
}

func newHash(alg string) (func() hash.Hash, error) {
	switch strings.ToUpper(alg) {
	case "SHA1", "":
		return sha1.New, nil
	case "SHA256":
		return sha256.New, nil
	case "SHA512":
		return sha512.New, nil
	}
	return nil, fmt.Errorf("totp: unsupported algorithm %q", alg)
}
