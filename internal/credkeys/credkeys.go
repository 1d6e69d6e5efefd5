// Package credkeys lists the provider settings injector reads, grouped by
// provider, and the settings every provider shares: the only names a
// credentials Secret may carry when the Kubernetes webhook mounts it (each
// key KEY reaches the injector as KEY_FILE). Any other name would set an
// arbitrary NAME_FILE variable in the injector container: SSL_CERT would
// become SSL_CERT_FILE and replace Go's trust roots.
//
// It is a plain list, so the webhook checks key names without linking the
// providers and their crypto; a test checks it against the settings structs
// the injector actually reads (internal/pipeline.ProviderConfig).
package credkeys

import (
	"slices"
	"strings"
)

// Provider is one provider's settings.
type Provider struct {
	Name string // the template function: passwork, passbolt, passagent
	// URL names the settings that say which server gets the credentials;
	// one of them must be present with any other setting.
	URL []string
	// Settings are every setting of the provider, URL ones included.
	// Settings that are themselves paths (PASSWORK_TOKEN_STATE_FILE) are
	// left out: their value cannot come from a mounted file's content.
	Settings []string
}

// Providers returns every provider's settings, in a fresh slice.
func Providers() []Provider {
	return []Provider{
		{Name: "passwork", URL: []string{"PASSWORK_URL", "PASSWORK_HOST"}, Settings: []string{
			"PASSWORK_URL", "PASSWORK_HOST", "PASSWORK_API", "PASSWORK_TOKEN", "PASSWORK_REFRESH_TOKEN",
			"PASSWORK_API_KEY", "PASSWORK_MASTER_KEY", "PASSWORK_MASTER_PASSWORD", "PASSWORK_BATCH_SIZE"}},
		{Name: "passbolt", URL: []string{"PASSBOLT_URL"}, Settings: []string{
			"PASSBOLT_URL", "PASSBOLT_USER_ID", "PASSBOLT_PRIVATE_KEY", "PASSBOLT_PASSPHRASE",
			"PASSBOLT_SERVER_FINGERPRINT", "PASSBOLT_AUTH"}},
		{Name: "passagent", URL: []string{"PASSAGENT_URL"}, Settings: []string{
			"PASSAGENT_URL", "PASSAGENT_TOKEN", "PASSAGENT_MASTER_PASSWORD", "PASSAGENT_VAULT_KEY",
			"PASSAGENT_PAGE_SIZE"}},
	}
}

// Shared returns the keys that serve every provider, in a fresh slice:
// INJECTOR_CA, the PEM certificate of a private CA that signed a
// self-hosted server's certificate. Mounted as a file, it is what
// INJECTOR_CA_FILE names; it adds to the trust roots and replaces none.
func Shared() []string { return []string{"INJECTOR_CA"} }

// Names returns every accepted setting name, sorted.
func Names() []string {
	all := Shared()
	for _, p := range Providers() {
		all = append(all, p.Settings...)
	}
	slices.Sort(all)
	return all
}

// Check returns one problem per unacceptable key: a name that is not a
// provider setting, or a provider's settings without the setting naming
// its server. Keys are checked as a set, the way one Secret is mounted.
func Check(keys []string) []string {
	var problems []string
	used := map[string][]string{} // provider name -> its keys, in order
	for _, k := range keys {
		if slices.Contains(Shared(), k) {
			continue
		}
		p, ok := lookup(k)
		if !ok {
			problems = append(problems, k+" is not a provider setting injector reads (accepted: "+strings.Join(Names(), ", ")+")")
			continue
		}
		used[p.Name] = append(used[p.Name], k)
	}
	for _, p := range Providers() {
		if ks := used[p.Name]; len(ks) > 0 && !slices.ContainsFunc(ks, func(k string) bool { return slices.Contains(p.URL, k) }) {
			problems = append(problems, strings.Join(ks, ", ")+" need "+strings.Join(p.URL, " or ")+
				" in the same Secret: credentials go only to a server the operator named")
		}
	}
	return problems
}

func lookup(key string) (Provider, bool) {
	for _, p := range Providers() {
		if slices.Contains(p.Settings, key) {
			return p, true
		}
	}
	return Provider{}, false
}
