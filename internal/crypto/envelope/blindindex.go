package envelope

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/url"
	"strings"

	"golang.org/x/net/publicsuffix"
)

// Blind indexes let the server match entries without seeing plaintext. The
// read-only client never needs them (it matches on the plaintext name the
// list returns); the emulator computes them so its records look real.

const blindIndexInfo = "passagent:blind-index:v1"

// BlindIndexKey derives the HMAC key for blind indexes from the vault key:
// HKDF-SHA256 with an empty salt.
func BlindIndexKey(vaultKey []byte) ([]byte, error) {
	return hkdf.Key(sha256.New, vaultKey, nil, blindIndexInfo, KeySize)
}

// BlindIndex returns hex(HMAC-SHA256(biKey, kind+":"+Normalize(value))),
// kind being "name", "username" or "domain". An empty value has no index.
func BlindIndex(biKey []byte, kind, value string) string {
	v := Normalize(value)
	if v == "" {
		return ""
	}
	m := hmac.New(sha256.New, biKey)
	m.Write([]byte(kind + ":" + v))
	return hex.EncodeToString(m.Sum(nil))
}

// Normalize trims and lowercases. The proposal also applies NFKC first;
// that needs golang.org/x/text, which this module does not depend on, and
// only changes the hash of names that are not already NFKC (see
// docs/passagent.md).
func Normalize(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

// SearchTokens returns, for each whitespace-separated word of the lowercased
// name, its prefixes of 3 to min(len, 32) characters, deduplicated, in order.
func SearchTokens(name string) []string {
	seen := map[string]bool{}
	var out []string
	for _, w := range strings.Fields(strings.ToLower(name)) {
		r := []rune(w)
		for n := 3; n <= len(r) && n <= 32; n++ {
			p := string(r[:n])
			if !seen[p] {
				seen[p] = true
				out = append(out, p)
			}
		}
	}
	return out
}

// RegistrableDomain returns the eTLD+1 of a URL's host ("https://www.a.example.co.uk:8443/x"
// gives "example.co.uk"), or "" when there is none. A bare host is accepted.
func RegistrableDomain(raw string) string {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return ""
	}
	if !strings.Contains(raw, "://") {
		raw = "https://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	host := strings.TrimPrefix(strings.ToLower(u.Hostname()), "www.")
	if host == "" {
		return ""
	}
	d, err := publicsuffix.EffectiveTLDPlusOne(host)
	if err != nil {
		return host // an IP address or a bare suffix: index the host itself
	}
	return d
}
