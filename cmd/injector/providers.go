package main

import (
	"context"
	"fmt"
	"os"
	"reflect"
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
// never mentions Passbolt needs no Passbolt settings. The provider, with
// its cached keys and tokens, then lives as long as the process, except
// when reload is set: each Resolve re-reads the provider's settings first
// (credentials given as NAME_FILE change when Kubernetes rotates a Secret)
// and rebuilds the provider if they changed.
type lazyProvider struct {
	build  func(cfg *providerConfig) (template.Resolver, error)
	pick   func(cfg *providerConfig) any   // this provider's settings, to compare
	reload func() (*providerConfig, error) // nil: settings never change

	mu    sync.Mutex
	cfg   *providerConfig
	built bool
	r     template.Resolver
	err   error
}

func (l *lazyProvider) Resolve(ctx context.Context, refs []fetch.Ref) ([]fetch.Result, error) {
	r, err := l.resolver()
	if err != nil {
		return nil, err
	}
	return r.Resolve(ctx, refs)
}

func (l *lazyProvider) resolver() (template.Resolver, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.built && l.reload != nil {
		// A settings file caught mid-rotation (missing, half-written) is
		// no reason to drop a working provider: keep it until the
		// settings read cleanly again.
		if fresh, err := l.reload(); err == nil && !reflect.DeepEqual(l.pick(fresh), l.pick(l.cfg)) {
			l.cfg, l.built = fresh, false
		}
	}
	if !l.built {
		l.r, l.err = l.build(l.cfg)
		l.built = true
	}
	return l.r, l.err
}

// notConfigured is the error for a provider whose required settings are
// missing, naming them.
func notConfigured(name string, vars ...string) error {
	return fmt.Errorf("%s: not configured: set %v (each also as NAME_FILE)", name, vars)
}

// newProviders returns the resolver for every provider, built lazily from
// cfg with the given transport options. reload, if not nil, re-reads the
// settings (see lazyProvider).
func newProviders(cfg *providerConfig, opt fetch.Options, reload func() (*providerConfig, error)) map[string]template.Resolver {
	return map[string]template.Resolver{
		"passwork": &lazyProvider{cfg: cfg, reload: reload,
			pick: func(c *providerConfig) any { return c.Passwork },
			build: func(c *providerConfig) (template.Resolver, error) {
				if !c.Passwork.Configured() {
					return nil, notConfigured("passwork", "PASSWORK_URL (or PASSWORK_HOST)", "PASSWORK_TOKEN (or PASSWORK_API_KEY)", "PASSWORK_MASTER_KEY")
				}
				return passwork.New(c.Passwork, opt)
			}},
		"passbolt": &lazyProvider{cfg: cfg, reload: reload,
			pick: func(c *providerConfig) any { return c.Passbolt },
			build: func(c *providerConfig) (template.Resolver, error) {
				if c.Passbolt.URL == "" {
					return nil, notConfigured("passbolt", "PASSBOLT_URL", "PASSBOLT_USER_ID", "PASSBOLT_PRIVATE_KEY", "PASSBOLT_PASSPHRASE")
				}
				return passbolt.New(c.Passbolt, opt)
			}},
		"passagent": &lazyProvider{cfg: cfg, reload: reload,
			pick: func(c *providerConfig) any { return c.PassAgent },
			build: func(c *providerConfig) (template.Resolver, error) {
				if c.PassAgent.Token == "" {
					return nil, notConfigured("passagent", "PASSAGENT_TOKEN", "PASSAGENT_MASTER_PASSWORD (or PASSAGENT_VAULT_KEY)")
				}
				return passagent.New(c.PassAgent, opt)
			}},
	}
}

// reloadProviders re-reads every provider's settings from the environment
// and NAME_FILE files.
func reloadProviders() (*providerConfig, error) {
	fresh := &settings{}
	if err := loadConfig(fresh, os.Environ()); err != nil {
		return nil, err
	}
	return &fresh.Providers, nil
}
