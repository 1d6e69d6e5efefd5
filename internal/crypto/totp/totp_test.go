package totp

import (
	"strings"
	"testing"
	"time"
)

// RFC 6238 appendix B vectors (8 digits). The seeds are the ASCII strings
// "12345678901234567890" repeated to the hash's key size.
func TestRFC6238Vectors(t *testing.T) {
	seeds := map[string]string{
		"SHA1":   "12345678901234567890",
		"SHA256": "12345678901234567890123456789012",
		"SHA512": "1234567890123456789012345678901234567890123456789012345678901234",
	}
	tests := []struct {
		unix int64
		alg  string
		want string
	}{
		{59, "SHA1", "94287082"},
		{59, "SHA256", "46119246"},
		{59, "SHA512", "90693936"},
		{1111111109, "SHA1", "07081804"},
		{1111111109, "SHA256", "68084774"},
		{1111111109, "SHA512", "25091201"},
		{1234567890, "SHA1", "89005924"},
		{2000000000, "SHA256", "90698825"},
		{20000000000, "SHA512", "47863826"},
	}
	for _, tt := range tests {
		p := Params{Secret: []byte(seeds[tt.alg]), Algorithm: tt.alg, Digits: 8, Period: 30 * time.Second}
		got, err := p.Code(time.Unix(tt.unix, 0))
		if err != nil {
			t.Fatal(err)
		}
		if got != tt.want {
			t.Errorf("%s at %d = %s, want %s", tt.alg, tt.unix, got, tt.want)
		}
	}
}

func TestParseForms(t *testing.T) {
	// "12345678901234567890" in base32.
	const b32 = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
	at := time.Unix(59, 0)
	tests := []struct {
		name, in, want string
	}{
		{"bare", b32, "287082"},
		{"lower with spaces", strings.ToLower("GEZD GNBV GY3T QOJQ GEZD GNBV GY3T QOJQ"), "287082"},
		{"uri", "otpauth://totp/acme:alice?secret=" + b32 + "&issuer=acme", "287082"},
		{"uri 8 digits", "otpauth://totp/x?secret=" + b32 + "&digits=8&algorithm=sha1&period=30", "94287082"},
	}
	for _, tt := range tests {
		got, err := Generate(tt.in, at)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if got != tt.want {
			t.Errorf("%s: got %s, want %s", tt.name, got, tt.want)
		}
	}
}

func TestParseErrorsDoNotLeakSecret(t *testing.T) {
	for _, in := range []string{"not*base32!", "otpauth://hotp/x?secret=GEZDGNBV", "otpauth://totp/x?secret=GEZDGNBV&algorithm=MD5", ""} {
		_, err := Parse(in)
		if err == nil {
			t.Fatalf("Parse(%q): want error", in)
		}
		if in != "" && strings.Contains(err.Error(), "GEZDGNBV") {
			t.Errorf("error leaks secret: %v", err)
		}
	}
}
