package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/injector-dev/injector/internal/envconfig"
	"github.com/injector-dev/injector/internal/fetch"
	"github.com/injector-dev/injector/internal/logging"
	"github.com/injector-dev/injector/internal/pipeline"
)

// settings is what injector reads from its environment; every setting
// NAME may also be given as NAME_FILE (see internal/envconfig).
type settings struct {
	Log    logging.Settings
	Delims string `env:"INJECTOR_DELIMS" envDefault:"<< >>"`
	// NoEnvTemplates is the default of --no-env-templates.
	NoEnvTemplates bool `env:"INJECTOR_NO_ENV_TEMPLATES"`
	// Defaults of the --env-from flags (run, check), so an image whose
	// entry point is `injector run --` takes them from its environment.
	// Selections are separated by ";" (a tag selection holds commas).
	EnvFrom     []string `env:"INJECTOR_ENV_FROM" envSeparator:";"`
	EnvPrefix   string   `env:"INJECTOR_ENV_PREFIX"`
	EnvNaming   string   `env:"INJECTOR_ENV_NAMING"`
	EnvOverride bool     `env:"INJECTOR_ENV_OVERRIDE"`
	EnvAllow    []string `env:"INJECTOR_ENV_ALLOW"`

	// Transport settings shared by every provider.
	HTTPTimeout    time.Duration `env:"INJECTOR_HTTP_TIMEOUT" envDefault:"30s"`
	CAFile         string        `env:"INJECTOR_CA_FILE"`
	RetryAttempts  int           `env:"INJECTOR_RETRY_ATTEMPTS" envDefault:"4"`
	RetryBaseDelay time.Duration `env:"INJECTOR_RETRY_BASE_DELAY" envDefault:"200ms"`

	// The ciphertext cache (docs/cache.md); --cache-dir and
	// --cache-max-age override them.
	CacheDir    string        `env:"INJECTOR_CACHE_DIR"`
	CacheMaxAge time.Duration `env:"INJECTOR_CACHE_MAX_AGE"`

	Providers pipeline.ProviderConfig

	// fromEnv is set when the settings came from the environment, so
	// they can be read again (credential rotation in daemon mode).
	fromEnv bool
}

func loadSettings() (*settings, error) {
	s := &settings{fromEnv: true}
	if err := envconfig.Load(s, os.Environ()); err != nil {
		return nil, usageErr(err)
	}
	return s, nil
}

// reloadProviders re-reads every provider's settings from the environment
// and NAME_FILE files.
func reloadProviders() (*pipeline.ProviderConfig, error) {
	fresh := &settings{}
	if err := envconfig.Load(fresh, os.Environ()); err != nil {
		return nil, err
	}
	return &fresh.Providers, nil
}

// fetchOptions builds the transport every provider uses: the timeout, extra
// trusted CAs (self-hosted servers often use a private CA) and retries.
func (s *settings) fetchOptions(observe fetch.Observer) (fetch.Options, error) {
	if s.HTTPTimeout <= 0 || s.RetryAttempts <= 0 || s.RetryBaseDelay <= 0 {
		return fetch.Options{}, usageErr(errors.New("config: INJECTOR_HTTP_TIMEOUT, INJECTOR_RETRY_ATTEMPTS and INJECTOR_RETRY_BASE_DELAY must be positive"))
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	if s.CAFile != "" {
		pem, err := os.ReadFile(s.CAFile)
		if err != nil {
			return fetch.Options{}, usageErr(fmt.Errorf("config: INJECTOR_CA_FILE: %w", err))
		}
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return fetch.Options{}, usageErr(fmt.Errorf("config: INJECTOR_CA_FILE %s: no PEM certificate found", s.CAFile))
		}
		transport.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return fetch.Options{
		Client:      &http.Client{Timeout: s.HTTPTimeout, Transport: transport},
		Observe:     observe,
		MaxAttempts: s.RetryAttempts,
		BaseDelay:   s.RetryBaseDelay,
	}, nil
}
