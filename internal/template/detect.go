package template

import (
	"strings"
)

// CallsProvider reports whether text holds an action that calls a secret
// provider: the test for whether an inherited environment variable is a
// template. Values that merely contain the left delimiter ("a << b", a
// shell heredoc, an exported bash function) are not templates and pass
// through unchanged.
//
// An action calls a provider when, after the trim marker and opening
// parentheses, its first word is a provider or its list function
// (passworkEntries…) ("<< passwork …", even when
// the action is never closed, so a broken template still fails loudly),
// or when it is closed on the same line and a provider appears in it as a
// word after a space, "(" or "|" ("<< printf "%s" (passbolt "a") >>").
// Heredocs span lines, so the second form never matches one.
func CallsProvider(text string, delims [2]string) bool {
	if delims[0] == "" || delims[1] == "" {
		delims = DefaultDelims
	}
	for rest := text; ; {
		i := strings.Index(rest, delims[0])
		if i < 0 {
			return false
		}
		rest = rest[i+len(delims[0]):]
		body, closed := rest, false
		if j := strings.Index(rest, delims[1]); j >= 0 {
			body, closed = rest[:j], true
		}
		if leadingProviderRE().MatchString(body) {
			return true
		}
		if closed && !strings.Contains(body, "\n") && innerProviderRE().MatchString(body) {
			return true
		}
	}
}

var (
	providerWords     = strings.Join(Providers, "|")
	leadingProviderRE = lazyRegexp(`^-?[ \t]*[( \t]*(` + providerWords + `)(Entries)?([ \t)]|$)`)
	innerProviderRE   = lazyRegexp(`[ \t(|](` + providerWords + `)(Entries)?([ \t)]|$)`)
)
