package fetch

import (
	"encoding/base64"
	"testing"
	"time"
)

func TestJWTExpiry(t *testing.T) {
	enc := base64.RawURLEncoding.EncodeToString
	jwt := func(payload string) string {
		return enc([]byte(`{"alg":"HS256"}`)) + "." + enc([]byte(payload)) + ".sig"
	}
	tests := []struct {
		token string
		want  time.Time
		ok    bool
	}{
		{jwt(`{"exp":1767225600,"sub":"u"}`), time.Unix(1767225600, 0), true},
		{jwt(`{"exp":1767225600.5}`), time.Unix(1767225600, 0), true},
		{jwt(`{"sub":"u"}`), time.Time{}, false},
		{jwt(`{"exp":"soon"}`), time.Time{}, false},
		{jwt(`{"exp":-1}`), time.Time{}, false},
		{"opaque-token", time.Time{}, false},
		{"a.!!!.c", time.Time{}, false},
		{jwt(`not json`), time.Time{}, false},
	}
	for _, tt := range tests {
		got, ok := JWTExpiry(tt.token)
		if ok != tt.ok || !got.Equal(tt.want) {
			t.Errorf("JWTExpiry(%q) = %v, %v; want %v, %v", tt.token, got, ok, tt.want, tt.ok)
		}
	}
}
