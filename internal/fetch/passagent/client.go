// Package passagent reads secrets from PassAgent (passagent.ai) V3 entries
// for injector templates:
//
//	<< passagent "GitHub" "password" >>
//	<< passagent "id:pwd_12345" "totp" >>
//
// PassAgent encrypts on the client: the server stores, per entry, an item
// key wrapped with the user's vault key and the payload sealed with the
// item key. This client derives the vault key once (Argon2id over the
// master password and the server's salt, or takes a pre-derived key), lists
// all entries with as few paginated list calls as the page size allows and
// decrypts the referenced ones locally. It never calls the reveal endpoint
// (limited to 20/min, fail-closed) and never writes. The assumed wire and
// byte formats are in docs/passagent.md.
package passagent

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/injector-dev/injector/internal/crypto/envelope"
	"github.com/injector-dev/injector/internal/fetch"
)

// Config is read from the environment. The CLI layer handles the _FILE
// variants (PASSAGENT_TOKEN_FILE and so on).
type Config struct {
	// URL is the API base, ending in /api (the hosted service is
	// https://passagent.ai/api). It has no default: the token goes only to
	// a server the operator named, never to a host picked for them.
	URL string `env:"PASSAGENT_URL"`
	// Token is a Supabase access token (JWT), sent as a bearer token.
	Token string `env:"PASSAGENT_TOKEN"`
	// MasterPassword derives the vault key with the salt and Argon2id
	// parameters from GET {URL}/vault/salt.
	MasterPassword string `env:"PASSAGENT_MASTER_PASSWORD"`
	// VaultKey is the pre-derived 32-byte vault key in base64; it replaces
	// MasterPassword and skips the salt call and the KDF.
	VaultKey string `env:"PASSAGENT_VAULT_KEY"`
	// PageSize is the list page size, 1 to 2000 (default 1000).
	PageSize int `env:"PASSAGENT_PAGE_SIZE" envDefault:"1000"`
}

// Page size bounds: the list endpoint rejects limit > 2000.
const (
	DefaultPageSize = 1000
	MaxPageSize     = 2000
)

// Errors a caller may want to tell apart (errors.Is).
var (
	// ErrUnauthorized: the bearer token was rejected (HTTP 401).
	ErrUnauthorized = errors.New("token expired or invalid (HTTP 401); set a fresh PASSAGENT_TOKEN")
	// ErrWrongKey: item keys do not authenticate under the vault key.
	ErrWrongKey = errors.New("wrong master password or vault key")
	// ErrLegacy: the entry predates V3 encryption.
	ErrLegacy = errors.New("legacy (pre-V3) entry")
)

// Client resolves PassAgent references. It is safe for concurrent use and
// meant to live as long as the process: the vault key is derived once and
// cached; the entry list is fetched fresh by every Resolve.
type Client struct {
	base     string // API base without trailing slash, e.g. https://passagent.ai/api
	basePath string // base's URL path as errors show it, e.g. /api
	token    string
	password string
	pageSize int
	http     *fetch.HTTP
	now      func() time.Time

	// keyMu is held while the key is derived, so that concurrent first
	// Resolve calls run the KDF once.
	keyMu    sync.Mutex
	vaultKey []byte
	fixedKey bool // vaultKey came from PASSAGENT_VAULT_KEY and is never dropped
	// derived holds the keys derived so far by salt and parameters, most
	// recent last: a key dropped after a failure is not derived again while
	// the server sends the same salt, so a failing server costs one
	// derivation, not one per refresh. derivations counts them.
	derived     []derivedKey
	derivations int

	// What a warm refresh of unchanged data does not redo: decoding the
	// list pages it has seen, opening the entries it has opened.
	bodies fetch.Bodies
	opened opens
}

// derivedKey is one derivation's input (the password is fixed) and output.
type derivedKey struct {
	salt   string
	params envelope.KDFParams
	key    []byte
}

// maxDerived bounds the derived-key cache: a server that keeps changing
// the salt gets one derivation per change, and no memory in return.
const maxDerived = 4

// New checks cfg. It does no network I/O and runs no KDF. Every problem
// is reported at once, so one run shows all there is to fix.
func New(cfg Config, opt fetch.Options) (*Client, error) {
	var problems []error
	c := &Client{token: strings.TrimSpace(cfg.Token), http: opt.NewHTTP("passagent"), now: time.Now}
	if strings.TrimSpace(cfg.URL) == "" {
		problems = append(problems, errors.New("passagent: PASSAGENT_URL is required (https://passagent.ai/api for the hosted service, or your server's API base): the token is sent only to a server you name"))
	} else if base, err := fetch.BaseURL("passagent", "PASSAGENT_URL", cfg.URL); err != nil {
		problems = append(problems, err)
	} else {
		u, _ := url.Parse(base) // cannot fail: BaseURL parsed it
		c.base, c.basePath = base, u.EscapedPath()
	}
	if c.token == "" {
		problems = append(problems, errors.New("passagent: PASSAGENT_TOKEN is empty"))
	}
	switch {
	case cfg.VaultKey != "" && cfg.MasterPassword != "":
		problems = append(problems, errors.New("passagent: set PASSAGENT_MASTER_PASSWORD or PASSAGENT_VAULT_KEY, not both"))
	case cfg.VaultKey != "":
		key, err := envelope.DecodeBase64(cfg.VaultKey)
		switch {
		case err != nil:
			problems = append(problems, errors.New("passagent: PASSAGENT_VAULT_KEY is not base64"))
		case len(key) != envelope.KeySize:
			problems = append(problems, fmt.Errorf("passagent: PASSAGENT_VAULT_KEY is %d bytes, want %d", len(key), envelope.KeySize))
		default:
			c.vaultKey, c.fixedKey = key, true
		}
	case cfg.MasterPassword != "":
		c.password = cfg.MasterPassword
	default:
		problems = append(problems, errors.New("passagent: PASSAGENT_MASTER_PASSWORD or PASSAGENT_VAULT_KEY is required"))
	}
	switch {
	case cfg.PageSize == 0:
		c.pageSize = DefaultPageSize
	case cfg.PageSize < 1 || cfg.PageSize > MaxPageSize:
		problems = append(problems, fmt.Errorf("passagent: PASSAGENT_PAGE_SIZE %d out of range 1..%d", cfg.PageSize, MaxPageSize))
	default:
		c.pageSize = cfg.PageSize
	}
	if len(problems) > 0 {
		return nil, errors.Join(problems...)
	}
	return c, nil
}

// CredentialExpiry is when the server stops accepting PASSAGENT_TOKEN: the
// "exp" of the Supabase session JWT. injector cannot refresh it (PassAgent
// publishes no login), so an operator has to replace it before then.
func (c *Client) CredentialExpiry() (time.Time, bool) {
	return fetch.JWTExpiry(c.token)
}

// key returns the vault key, deriving it on first use.
func (c *Client) key(ctx context.Context) ([]byte, error) {
	c.keyMu.Lock()
	defer c.keyMu.Unlock()
	if c.vaultKey != nil {
		return c.vaultKey, nil
	}
	salt, params, err := c.salt(ctx)
	if err != nil {
		return nil, err
	}
	for _, d := range c.derived {
		if d.salt == string(salt) && d.params == params {
			c.vaultKey = d.key
			return d.key, nil
		}
	}
	if err := params.Validate(); err != nil {
		return nil, fmt.Errorf("passagent: GET %s: the server asks for more than injector spends on a key derivation: %w "+
			"(documented profiles: 64 MiB/t=3/p=4 and 32 MiB/t=4/p=4; with PASSAGENT_VAULT_KEY no derivation runs)", c.endpoint("/vault/salt"), err)
	}
	// Argon2id is not interruptible: a derivation runs to its end (about
	// a second at the caps) even when ctx is cancelled meanwhile.
	key, err := envelope.DeriveVaultKey(c.password, salt, params)
	if err != nil {
		return nil, fmt.Errorf("passagent: derive vault key: %w", err)
	}
	c.derivations++
	// The derivation's memory (up to envelope.MaxMemoryKiB) is garbage
	// now, but the collector, paced by the heap it just saw, would let
	// the next 64 MiB of allocations pile on top of it, and give it back
	// to the system only minutes later. Return it now: a sidecar keeps
	// running for days, and its peak is this derivation alone.
	debug.FreeOSMemory()
	if len(c.derived) == maxDerived {
		c.derived = c.derived[1:]
	}
	c.derived = append(c.derived, derivedKey{salt: string(salt), params: params, key: key})
	c.vaultKey = key
	return key, nil
}

// forgetKey drops a derived key that failed to open every entry, so the
// next Resolve fetches the salt again (it may have been reset; the key is
// derived again only if the salt or parameters changed). A pre-derived key
// is kept: re-reading it would give the same bytes.
func (c *Client) forgetKey(bad []byte) {
	c.keyMu.Lock()
	defer c.keyMu.Unlock()
	if !c.fixedKey && len(c.vaultKey) > 0 && len(bad) > 0 && &c.vaultKey[0] == &bad[0] {
		c.vaultKey = nil
	}
}
