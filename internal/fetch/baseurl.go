package fetch

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
)

// BaseURL checks a provider's base URL setting (named by setting, e.g.
// "PASSWORK_URL") and returns it without trailing slashes. It accepts https,
// and plain http only for loopback (an emulator, a local tunnel): tokens
// and keys must not cross a network in clear text.
func BaseURL(provider, setting, raw string) (string, error) {
	raw = strings.TrimRight(strings.TrimSpace(raw), "/")
	if raw == "" {
		return "", fmt.Errorf("%s: %s is empty", provider, setting)
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("%s: %s is not an absolute URL", provider, setting)
	}
	if u.User != nil {
		return "", errors.New(provider + ": " + setting + " must not contain credentials; use the token settings")
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !LoopbackHost(u.Hostname()) {
			return "", fmt.Errorf("%s: %s %q must use https (http is allowed for loopback only)", provider, setting, raw)
		}
	default:
		return "", fmt.Errorf("%s: %s %q must use https", provider, setting, raw)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("%s: %s %q must not have a query or fragment", provider, setting, raw)
	}
	return raw, nil
}

// LoopbackHost reports whether host, as a URL names it, is loopback:
// "localhost" or a loopback IP address. Only such hosts may be reached
// over plain http.
func LoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
