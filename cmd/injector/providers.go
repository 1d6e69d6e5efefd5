package main

import (
	"context"
	"fmt"
	"sync"

	"github.com/injector-dev/injector/internal/fetch"
	"github.com/injector-dev/injector/internal/fetch/passagent"
	"github.com/injector-dev/injector/internal/fetch/passbolt"
	"github.com/injector-dev/injector/internal/fetch/passwork"
	"github.com/injector-dev/injector/internal/template"
)

// providerConfig is every provider's settings, read from the environment.
type providerConfig struct {
	Passwork  passwork.Config
	Passbolt  passbolt.Config
	PassAgent passagent.Config
}

// lazyProvider builds its provider on first use, so a template set that
// never mentions Passbolt needs no Passbolt settings, and a daemon keeps one
// provider (with its cached keys and tokens) for its whole life.
type lazyProvider struct {
	build func() (template.Resolver, error)

	once sync.Once
	r    template.Resolver
	err  error
}

func (l *lazyProvider) Resolve(ctx context.Context, refs []fetch.Ref) ([]fetch.Result, error) {
	l.once.Do(func() { l.r, l.err = l.build() })
	if l.err != nil {
		return nil, l.err
	}
	return l.r.Resolve(ctx, refs)
}

// notConfigured is the error for a provider whose required settings are
// missing, naming them.
func notConfigured(name string, vars ...string) error {
	return fmt.Errorf("%s: not configured: set %v (each also as NAME_FILE)", name, vars)
}

// newProviders returns the resolver for every provider, built lazily from
// cfg with the given transport options.
func newProviders(cfg *providerConfig, opt fetch.Options) map[string]template.Resolver {
	return map[string]template.Resolver{
		"passwork": &lazyProvider{build: func() (template.Resolver, error) {
			if cfg.Passwork.URL == "" {
				return nil, notConfigured("passwork", "PASSWORK_URL", "PASSWORK_TOKEN (or PASSWORK_API_KEY)", "PASSWORK_MASTER_KEY")
			}
			return passwork.New(cfg.Passwork, opt)
		}},
		"passbolt": &lazyProvider{build: func() (template.Resolver, error) {
			if cfg.Passbolt.URL == "" {
				return nil, notConfigured("passbolt", "PASSBOLT_URL", "PASSBOLT_USER_ID", "PASSBOLT_PRIVATE_KEY", "PASSBOLT_PASSPHRASE")
			}
			return passbolt.New(cfg.Passbolt, opt)
		}},
		"passagent": &lazyProvider{build: func() (template.Resolver, error) {
			if cfg.PassAgent.Token == "" {
				return nil, notConfigured("passagent", "PASSAGENT_TOKEN", "PASSAGENT_MASTER_PASSWORD (or PASSAGENT_VAULT_KEY)")
			}
			return passagent.New(cfg.PassAgent, opt)
		}},
	}
}
