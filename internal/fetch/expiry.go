package fetch

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"time"
)

// JWTExpiry reads the "exp" claim of a token shaped like a JWT, without
// verifying it: it only tells an operator when the server will stop
// accepting the token (a Supabase session, a Passwork token if it is a
// JWT). ok is false for an opaque token or one without "exp". The token
// is never part of an error or a log line.
func JWTExpiry(token string) (exp time.Time, ok bool) {
	parts := strings.Split(strings.TrimSpace(token), ".")
	if len(parts) != 3 {
		return time.Time{}, false
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return time.Time{}, false
	}
	var claims struct {
		Exp *json.Number `json:"exp"`
	}
	if json.Unmarshal(payload, &claims) != nil || claims.Exp == nil {
		return time.Time{}, false
	}
	secs, err := claims.Exp.Float64()
	if err != nil || secs <= 0 || secs > 1e11 {
		return time.Time{}, false
	}
	return time.Unix(int64(secs), 0), true
}
