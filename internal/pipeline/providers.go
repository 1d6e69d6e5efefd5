package pipeline

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"time"

	"github.com/injector-dev/injector/internal/fetch"
	"github.com/injector-dev/injector/internal/fetch/passagent"
	"github.com/injector-dev/injector/internal/fetch/passbolt"
	"github.com/injector-dev/injector/internal/fetch/passwork"
	"github.com/injector-dev/injector/internal/template"
)

// ProviderConfig is every provider's settings. The fields carry env tags:
// the command line reads them from the environment.
type ProviderConfig struct {
	Passwork  passwork.Config
	Passbolt  passbolt.Config
	PassAgent passagent.Config
}

// Reload re-reads the providers' settings; see Providers.
type Reload func() (*ProviderConfig, error)

// Providers returns the resolver of every provider, by template function
// name, each built on first use from cfg with the transport options opt,
// so a template set that never mentions Passbolt needs no Passbolt
// settings. A provider, with its cached keys and tokens, then lives as long
// as the process, except when reload is not nil: each Resolve calls it
// first (credentials given as NAME_FILE change when Kubernetes rotates a
// Secret) and rebuilds the provider if its settings changed.
func Providers(cfg *ProviderConfig, opt fetch.Options, reload Reload) map[string]template.Resolver {
	return map[string]template.Resolver{
		"passwork": &lazyProvider{cfg: cfg, reload: reload,
			pick: func(c *ProviderConfig) any { return c.Passwork },
			build: func(c *ProviderConfig) (template.Resolver, error) {
				if !c.Passwork.Configured() {
					return nil, notConfigured("passwork", "PASSWORK_URL (or PASSWORK_HOST)", "PASSWORK_TOKEN (or PASSWORK_API_KEY)", "PASSWORK_MASTER_KEY")
				}
				return passwork.New(c.Passwork, opt)
			}},
		"passbolt": &lazyProvider{cfg: cfg, reload: reload,
			pick: func(c *ProviderConfig) any { return c.Passbolt },
			build: func(c *ProviderConfig) (template.Resolver, error) {
				if c.Passbolt.URL == "" {
					return nil, notConfigured("passbolt", "PASSBOLT_URL", "PASSBOLT_USER_ID", "PASSBOLT_PRIVATE_KEY", "PASSBOLT_PASSPHRASE")
				}
				return passbolt.New(c.Passbolt, opt)
			}},
		"passagent": &lazyProvider{cfg: cfg, reload: reload,
			pick: func(c *ProviderConfig) any { return c.PassAgent },
			build: func(c *ProviderConfig) (template.Resolver, error) {
				if c.PassAgent.Token == "" && c.PassAgent.URL == "" {
					return nil, notConfigured("passagent", "PASSAGENT_URL", "PASSAGENT_TOKEN", "PASSAGENT_MASTER_PASSWORD (or PASSAGENT_VAULT_KEY)")
				}
				return passagent.New(c.PassAgent, opt)
			}},
	}
}

// notConfigured is the error for a provider whose required settings are
// missing, naming them.
func notConfigured(name string, vars ...string) error {
	return fmt.Errorf("%s: not configured: set %v (each also as NAME_FILE)", name, vars)
}

// lazyProvider builds its provider on first use and, with reload, rebuilds
// it when its settings change (see Providers).
type lazyProvider struct {
	build  func(cfg *ProviderConfig) (template.Resolver, error)
	pick   func(cfg *ProviderConfig) any // this provider's settings, to compare
	reload Reload                        // nil: settings never change

	mu    sync.Mutex
	cfg   *ProviderConfig
	built bool
	r     template.Resolver
	err   error
}

// Resolve resolves refs with the provider. When the server turns the
// batch down (a 401 for a token that expired) and the settings read
// again differ (the Secret behind a NAME_FILE was rotated since this run
// read it), it tries once more with the new ones before failing.
func (l *lazyProvider) Resolve(ctx context.Context, refs []fetch.Ref) ([]fetch.Result, error) {
	res, err := l.resolveOnce(ctx, refs)
	if err != nil && ctx.Err() == nil && l.settingsChanged() {
		return l.resolveOnce(ctx, refs)
	}
	return res, err
}

// settingsChanged reads the settings again and reports whether this
// provider's differ from those it was built with.
func (l *lazyProvider) settingsChanged() bool {
	if l.reload == nil {
		return false
	}
	fresh, err := l.reload()
	if err != nil {
		return false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return !reflect.DeepEqual(l.pick(fresh), l.pick(l.cfg))
}

func (l *lazyProvider) resolveOnce(ctx context.Context, refs []fetch.Ref) ([]fetch.Result, error) {
	r, replaced, err := l.resolver()
	if lo, ok := replaced.(loggerOut); ok {
		// Settings changed (a rotated Secret): the old provider's
		// session is no use any more. Best effort, the new one matters.
		_ = lo.Logout(ctx)
	}
	if err != nil {
		return nil, err
	}
	return r.Resolve(ctx, refs)
}

// ResolveList lists selections with the provider's ResolveList, for the
// providers that can (template.Lister). Rejected credentials are read
// again as in Resolve.
func (l *lazyProvider) ResolveList(ctx context.Context, refs []fetch.Ref, sels []fetch.Selector) ([]fetch.Result, []fetch.Listing, error) {
	res, lists, err := l.resolveListOnce(ctx, refs, sels)
	if err != nil && ctx.Err() == nil && l.settingsChanged() {
		return l.resolveListOnce(ctx, refs, sels)
	}
	return res, lists, err
}

func (l *lazyProvider) resolveListOnce(ctx context.Context, refs []fetch.Ref, sels []fetch.Selector) ([]fetch.Result, []fetch.Listing, error) {
	r, replaced, err := l.resolver()
	if lo, ok := replaced.(loggerOut); ok {
		_ = lo.Logout(ctx) // as in Resolve
	}
	if err != nil {
		return nil, nil, err
	}
	lister, ok := r.(template.Lister)
	if !ok {
		return nil, nil, fmt.Errorf("%s: listing folders or tags is not supported by this provider", sels[0].Provider)
	}
	return lister.ResolveList(ctx, refs, sels)
}

// expirer is a provider that knows when its credentials expire.
type expirer interface {
	CredentialExpiry() (time.Time, bool)
}

// CredentialExpiry is when the built provider's credentials expire, if
// it knows.
func (l *lazyProvider) CredentialExpiry() (time.Time, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if e, ok := l.r.(expirer); ok && l.built && l.err == nil {
		return e.CredentialExpiry()
	}
	return time.Time{}, false
}

// CredentialExpiry returns, per provider that knows it, when its
// credentials expire (a token's "exp"), so an operator is warned before
// the outage.
func CredentialExpiry(providers map[string]template.Resolver) map[string]time.Time {
	out := map[string]time.Time{}
	for name, r := range providers {
		if e, ok := r.(expirer); ok {
			if t, ok := e.CredentialExpiry(); ok {
				out[name] = t
			}
		}
	}
	return out
}

// loggerOut is a provider that can end the server session it opened.
type loggerOut interface {
	Logout(ctx context.Context) error
}

// Logout ends the server session of the provider, if it was built and
// has one; a provider never used costs nothing.
func (l *lazyProvider) Logout(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if lo, ok := l.r.(loggerOut); ok && l.built && l.err == nil {
		return lo.Logout(ctx)
	}
	return nil
}

// Logout ends the server sessions the providers opened (Passbolt's
// GPGAuth session or JWT refresh token, Passwork v4's session), so a
// one-shot run leaves none behind and a daemon ends its own on exit. Every
// provider is tried; the errors are joined.
func Logout(ctx context.Context, providers map[string]template.Resolver) error {
	var errs []error
	for _, r := range providers {
		if lo, ok := r.(loggerOut); ok {
			if err := lo.Logout(ctx); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// resolver returns the provider, building it if needed, and the provider
// it replaced when the settings changed (nil otherwise).
func (l *lazyProvider) resolver() (r, replaced template.Resolver, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.built && l.reload != nil {
		// A settings file caught mid-rotation (missing, half-written) is
		// no reason to drop a working provider: keep it until the
		// settings read cleanly again.
		if fresh, err := l.reload(); err == nil && !reflect.DeepEqual(l.pick(fresh), l.pick(l.cfg)) {
			l.cfg, l.built, replaced = fresh, false, l.r
		}
	}
	if !l.built {
		// Building checks the settings and makes no request: whatever
		// fails here is the configuration's to fix.
		l.r, l.err = l.build(l.cfg)
		l.err = fetch.ConfigError(l.err)
		l.built = true
	}
	return l.r, replaced, l.err
}
