// Package passwork resolves secret references against a Passwork server.
// It speaks both API generations: Passwork 7 (/api/v1, token pair, RSA
// wrapped vault keys) and the legacy Passwork 4–6 API (/api/v4, API key,
// AES wrapped vault passwords), and decrypts client-side like the official
// clients. See docs/passwork.md for the request plan and its assumptions.
package passwork

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/injector-dev/injector/internal/fetch"
)

// Config is the provider configuration, read from the environment.
type Config struct {
	// URL is the server's base URL. A URL ending in /api/v4 selects the
	// legacy API when API is "auto".
	URL string `env:"PASSWORK_URL"`
	// Host is passwork-cli's name for URL, accepted so an existing
	// passwork-cli environment works as it is. Setting both to different
	// values is an error.
	Host string `env:"PASSWORK_HOST"`
	// API is "auto", "v1" (Passwork 7) or "v4" (Passwork 4–6).
	API string `env:"PASSWORK_API" envDefault:"auto"`
	// Token and RefreshToken are a Passwork 7 API token pair.
	Token        string `env:"PASSWORK_TOKEN"`
	RefreshToken string `env:"PASSWORK_REFRESH_TOKEN"`
	// APIKey is the legacy v4 API key.
	APIKey string `env:"PASSWORK_API_KEY"`
	// MasterKey is the already-derived base64 master key (as passwork-cli's
	// --master-key); MasterPassword is derived with the server's options.
	MasterKey      string `env:"PASSWORK_MASTER_KEY"`
	MasterPassword string `env:"PASSWORK_MASTER_PASSWORD"`
	// TokenStateFile, if set, is where rotated v7 tokens are persisted
	// (mode 0600) so the next process does not start from a pair that a
	// refresh has invalidated.
	TokenStateFile string `env:"PASSWORK_TOKEN_STATE_FILE"`
	// BatchSize is the number of sub-requests per /api/v1/batch call.
	BatchSize int `env:"PASSWORK_BATCH_SIZE" envDefault:"25"`
}

// vaultCacheTTL bounds how long the vault name → id map is reused across
// Resolve calls. A miss always refetches once, so a new vault is found
// immediately; the TTL only limits how long a renamed vault lingers.
const vaultCacheTTL = 5 * time.Minute

// Client resolves references against one Passwork server. It caches the
// session, the decrypted private key and unwrapped vault keys, so repeated
// Resolve calls never re-run PBKDF2 or RSA, and remembers decoded bodies
// and decryptions (memos), so a warm refresh of unchanged data redoes
// neither. It is safe for concurrent use; Resolve calls are serialised.
type Client struct {
	mu      sync.Mutex
	backend backend
	memo    *memos      // nil in tests that drive a backend directly
	http    *fetch.HTTP // told when a value comes unencrypted (KeepNothing)
	batch   int
	now     func() time.Time

	// lastIndex is the last search result indexed by path (see index).
	lastIndex struct {
		sums   []summary
		vaults map[string][]string
		idx    *index
	}
}

// Logout ends the server session this client opened, if any: the legacy
// v4 API's login session. Passwork 7 opens none (see v7.logout). The next
// Resolve logs in again. One-shot runs call it when done; daemons on exit.
func (c *Client) Logout(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.backend.logout(ctx)
}

// CredentialExpiry is when the server stops accepting the credentials,
// where the token says: on Passwork 7, the refresh token's "exp" when it
// is a JWT (the access token is renewed with it), else the access token's.
// Opaque tokens and the legacy API key carry no expiry.
func (c *Client) CredentialExpiry() (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	b, ok := c.backend.(*v7)
	if !ok {
		return time.Time{}, false
	}
	access, refresh := b.access, b.refresh
	if access == "" {
		access, refresh = b.cfg.Token, b.cfg.RefreshToken
	}
	if refresh != "" {
		return fetch.JWTExpiry(refresh)
	}
	return fetch.JWTExpiry(access)
}

// encrypted reports whether a master key is given: the server's values
// are then ciphertext under it.
func (cfg Config) encrypted() bool { return cfg.MasterKey != "" || cfg.MasterPassword != "" }

// Configured reports whether a server is set, under either name.
func (cfg Config) Configured() bool { return cfg.URL != "" || cfg.Host != "" }

// serverURL is PASSWORK_URL, or PASSWORK_HOST (passwork-cli's name for
// it). Both set must agree; the error names the settings, not the values
// (a URL may carry credentials).
func (cfg Config) serverURL() (value, name string, err error) {
	switch {
	case cfg.Host == "":
		return cfg.URL, "PASSWORK_URL", nil
	case cfg.URL == "":
		return cfg.Host, "PASSWORK_HOST", nil
	case strings.TrimRight(cfg.URL, "/") != strings.TrimRight(cfg.Host, "/"):
		return "", "", errors.New("passwork: PASSWORK_URL and PASSWORK_HOST (passwork-cli's name for it) are both set, to different servers; set one")
	}
	return cfg.URL, "PASSWORK_URL", nil
}

// New checks cfg and returns a client. It does no network I/O. Every
// problem with the settings is reported at once, so one run shows all
// there is to fix.
func New(cfg Config, opt fetch.Options) (*Client, error) {
	var problems []error
	base := ""
	if raw, name, err := cfg.serverURL(); err != nil {
		problems = append(problems, err)
	} else if base, err = fetch.BaseURL("passwork", name, raw); err != nil {
		problems = append(problems, err)
	}
	switch {
	case cfg.MasterKey != "" && cfg.MasterPassword != "":
		problems = append(problems, errors.New("passwork: set only one of PASSWORK_MASTER_KEY and PASSWORK_MASTER_PASSWORD"))
	case cfg.MasterKey != "":
		// Checked here, before any request: a key that is not even
		// base64 would otherwise come back as "server rejected the
		// master key hash". The message never shows the key.
		if k, err := base64.StdEncoding.DecodeString(strings.TrimSpace(cfg.MasterKey)); err != nil || len(k) == 0 {
			problems = append(problems, errors.New("passwork: PASSWORK_MASTER_KEY is not base64: it is the derived key, as passwork-cli's --master-key takes it (88 characters for the default 64 bytes); to give the master password itself, set PASSWORK_MASTER_PASSWORD instead"))
		}
	}
	batch := cfg.BatchSize
	if batch <= 0 {
		batch = 25
	}
	api := strings.ToLower(cfg.API)
	if api == "" || api == "auto" {
		api = "v1"
		if strings.HasSuffix(base, "/api/v4") {
			api = "v4"
		}
	}
	c := &Client{batch: batch, now: time.Now, memo: &memos{}}
	switch api {
	case "v1", "v7":
		if cfg.Token == "" {
			problems = append(problems, errors.New("passwork: PASSWORK_TOKEN is required for the Passwork 7 API"))
		}
	case "v4":
		if cfg.APIKey == "" {
			problems = append(problems, errors.New("passwork: PASSWORK_API_KEY is required for the legacy /api/v4 API"))
		}
	default:
		problems = append(problems, fmt.Errorf("passwork: PASSWORK_API must be auto, v1 or v4, not %q", cfg.API))
	}
	if len(problems) > 0 {
		return nil, errors.Join(problems...)
	}
	h := opt.NewHTTP("passwork")
	c.http = h
	if api == "v4" {
		if !strings.HasSuffix(base, "/api/v4") {
			base += "/api/v4"
		}
		c.backend = newV4(base, cfg, h, c.memo)
	} else {
		c.backend = newV7(strings.TrimSuffix(base, "/api/v1"), cfg, h, batch, c.memo)
	}
	return c, nil
}

// errInvalidMasterKey is the whole-batch error for a master key that does
// not decrypt the user's keys or that the server rejects.
var errInvalidMasterKey = errors.New("passwork: invalid master key (check PASSWORK_MASTER_KEY / PASSWORK_MASTER_PASSWORD)")

// batchError marks a failure inside per-entry work that affects the whole
// batch (the user's keys cannot be fetched), so Resolve returns it instead
// of repeating it on every result.
type batchError struct{ error }

func (e batchError) Unwrap() error { return e.error }

func isBatchError(err error) bool {
	var be batchError
	return errors.Is(err, errInvalidMasterKey) || errors.As(err, &be)
}

// itemKey is backend.itemKey that, for an entry stored without
// client-side encryption, tells the cache to keep none of this run's
// responses: its values are not ciphertext.
func (c *Client) itemKey(ctx context.Context, e *entry) (string, bool, error) {
	key, plain, err := c.backend.itemKey(ctx, e)
	if err == nil && plain {
		c.http.KeepNothing(noCSE)
	}
	return key, plain, err
}

// noCSE is why a run's Passwork responses are not cached: the server
// sent a value base64-encoded, not encrypted (its vault has client-side
// encryption off).
const noCSE = "an entry is stored without client-side encryption: its values are not ciphertext"

// errNoMasterKey is a per-entry error: the entry is encrypted but no
// master key was configured.
var errNoMasterKey = errors.New("entry is encrypted client-side but neither PASSWORK_MASTER_KEY nor PASSWORK_MASTER_PASSWORD is set")
