package credkeys_test

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/caarlos0/env/v11"

	"github.com/injector-dev/injector/internal/credkeys"
	"github.com/injector-dev/injector/internal/pipeline"
)

// The list must be exactly what the injector reads: every env-tagged
// setting of each provider's Config in pipeline.ProviderConfig, minus the
// path settings. A setting added to a provider without updating the list
// (or the reverse) fails here.
func TestMatchesProviderSettings(t *testing.T) {
	byName := map[string]credkeys.Provider{}
	for _, p := range credkeys.Providers() {
		byName[p.Name] = p
	}
	cfg := reflect.TypeFor[pipeline.ProviderConfig]()
	if cfg.NumField() != len(byName) {
		t.Errorf("ProviderConfig has %d providers, credkeys lists %d", cfg.NumField(), len(byName))
	}
	for f := range cfg.Fields() {
		name := strings.ToLower(f.Name)
		p, ok := byName[name]
		if !ok {
			t.Errorf("provider %s (ProviderConfig.%s) is not listed", name, f.Name)
			continue
		}
		params, err := env.GetFieldParams(reflect.New(f.Type).Interface())
		if err != nil {
			t.Fatal(err)
		}
		var want []string
		for _, prm := range params {
			if !strings.HasSuffix(prm.Key, "_FILE") {
				want = append(want, prm.Key)
			}
		}
		if got := slices.Sorted(slices.Values(p.Settings)); !slices.Equal(got, slices.Sorted(slices.Values(want))) {
			t.Errorf("%s settings = %v, want %v (from %s)", name, got, want, f.Type)
		}
		for _, u := range p.URL {
			if !slices.Contains(p.Settings, u) {
				t.Errorf("%s URL setting %s is not one of its settings", name, u)
			}
		}
	}
}

func TestCheck(t *testing.T) {
	for _, tt := range []struct {
		keys []string
		want []string // substrings, one per problem, in order
	}{
		{[]string{"PASSWORK_URL", "PASSWORK_TOKEN", "PASSWORK_MASTER_KEY"}, nil},
		{[]string{"PASSWORK_HOST", "PASSWORK_API_KEY"}, nil},
		{[]string{"PASSBOLT_URL", "PASSBOLT_PRIVATE_KEY", "PASSAGENT_URL", "PASSAGENT_TOKEN"}, nil},
		// SSL_CERT would become SSL_CERT_FILE and replace Go's trust roots.
		{[]string{"PASSWORK_URL", "SSL_CERT"}, []string{"SSL_CERT is not a provider setting"}},
		{[]string{"INJECTOR_CA_FILE"}, []string{"INJECTOR_CA_FILE is not a provider setting"}},
		// A private CA serves any provider; it names no server of its own.
		{[]string{"PASSWORK_URL", "PASSWORK_TOKEN", "INJECTOR_CA"}, nil},
		{[]string{"INJECTOR_CA"}, nil},
		{[]string{"PASSWORK_URL", "PASSWORK_TOKEN_STATE_FILE"}, []string{"PASSWORK_TOKEN_STATE_FILE is not"}},
		{[]string{"PASSAGENT_TOKEN", "PASSAGENT_VAULT_KEY"}, []string{"PASSAGENT_TOKEN, PASSAGENT_VAULT_KEY need PASSAGENT_URL"}},
		{[]string{"PASSWORK_TOKEN", "PASSBOLT_URL"}, []string{"PASSWORK_TOKEN need PASSWORK_URL or PASSWORK_HOST"}},
	} {
		got := credkeys.Check(tt.keys)
		if len(got) != len(tt.want) {
			t.Errorf("Check(%v) = %q, want %d problems", tt.keys, got, len(tt.want))
			continue
		}
		for i, w := range tt.want {
			if !strings.Contains(got[i], w) {
				t.Errorf("Check(%v)[%d] = %q, want it to contain %q", tt.keys, i, got[i], w)
			}
		}
	}
}
