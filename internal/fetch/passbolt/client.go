// Package passbolt reads secrets from a Passbolt server (v4 and v5 resource
// types) for injector templates:
//
//	<< passbolt "Folder/Sub/Name" "password" >>
//	<< passbolt "id:<resource uuid>" "totp" >>
//
// It logs in with JWT (default) or GPGAuth, walks the folder tree in memory
// and fetches only the secrets that are referenced. It is strictly
// read-only: it never writes resources, secrets or v5 session keys.
// The wire protocol is described in docs/passbolt.md.
package passbolt

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/injector-dev/injector/internal/crypto/pgp"
	"github.com/injector-dev/injector/internal/fetch"
)

// Config is read from the environment. PASSBOLT_PRIVATE_KEY_FILE and
// PASSBOLT_PASSPHRASE_FILE are handled by the CLI layer.
type Config struct {
	// URL is the server's base URL, e.g. https://passbolt.example.com. It
	// must be exactly the URL the server is configured with: JWT login
	// signs it into the challenge.
	URL string `env:"PASSBOLT_URL"`
	// UserID is the user's UUID (account kit, or profile page URL). JWT
	// login requires it; GPGAuth learns it at login.
	UserID string `env:"PASSBOLT_USER_ID"`
	// PrivateKey is the user's armored OpenPGP private key.
	PrivateKey string `env:"PASSBOLT_PRIVATE_KEY"`
	// Passphrase unlocks PrivateKey.
	Passphrase string `env:"PASSBOLT_PASSPHRASE"`
	// ServerFingerprint optionally pins the server key. When set, the key
	// served by /auth/verify.json must have this fingerprint or every
	// request fails.
	ServerFingerprint string `env:"PASSBOLT_SERVER_FINGERPRINT"`
	// Auth is "jwt", "gpgauth" or "auto" (default): JWT, falling back to
	// GPGAuth when the server has no JWT routes.
	Auth string `env:"PASSBOLT_AUTH" envDefault:"auto"`
}

// Auth modes.
const (
	AuthAuto    = "auto"
	AuthJWT     = "jwt"
	AuthGPGAuth = "gpgauth"
)

// ErrMFARequired is returned when the server demands a second factor for
// this user. injector does not answer MFA prompts.
var ErrMFARequired = errors.New("passbolt: MFA is required for this user; use an account without MFA for automation")

// uuidRE matches a Passbolt id. Compiled on first use, not at package
// initialisation, which every injector process pays (docs/performance.md).
var uuidRE = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
})

// Client resolves Passbolt references. It is safe for concurrent use and
// meant to live as long as the process: the server key, tokens, resource
// types and decrypted metadata keys are cached across Resolve calls;
// folder and resource listings are fetched fresh by every Resolve.
type Client struct {
	base string // server URL without trailing slash
	pin  string
	mode string
	key  *pgp.Key       // the user's unlocked private key
	dec  *pgp.Decrypter // key, ready to decrypt with
	http *fetch.HTTP
	now  func() time.Time

	// loginMu serialises logins and token refreshes so that concurrent
	// Resolve calls that all see a 401 re-authenticate once.
	loginMu sync.Mutex

	mu        sync.Mutex // guards the fields below
	userID    string
	serverKey *pgp.Key
	auth      authState
	types     map[string]resourceType // by resource_type_id

	// keysMu serialises fetches of /metadata/keys.json.
	keysMu   sync.Mutex
	metaKeys map[string]*pgp.Decrypter // decrypted shared metadata keys by id

	plain plainCache // plaintext of decrypted messages, by ciphertext hash
}

// New checks cfg and unlocks the private key. It does no network I/O.
func New(cfg Config, opt fetch.Options) (*Client, error) {
	// Every problem is collected, so one run shows all there is to fix.
	var problems []error
	base, err := fetch.BaseURL("passbolt", "PASSBOLT_URL", cfg.URL)
	if err != nil {
		problems = append(problems, err)
	}
	mode := strings.ToLower(strings.TrimSpace(cfg.Auth))
	switch mode {
	case "":
		mode = AuthAuto
	case AuthAuto, AuthJWT, AuthGPGAuth:
	default:
		problems = append(problems, fmt.Errorf("passbolt: PASSBOLT_AUTH must be jwt, gpgauth or auto, not %q", cfg.Auth))
	}
	userID := strings.TrimSpace(cfg.UserID)
	if userID != "" && !uuidRE().MatchString(userID) {
		problems = append(problems, fmt.Errorf("passbolt: PASSBOLT_USER_ID %q is not a UUID", userID))
	}
	if userID == "" && mode == AuthJWT {
		problems = append(problems, errors.New("passbolt: PASSBOLT_USER_ID is required for JWT login"))
	}
	var key *pgp.Key
	if strings.TrimSpace(cfg.PrivateKey) == "" {
		problems = append(problems, errors.New("passbolt: PASSBOLT_PRIVATE_KEY is empty"))
	} else if key, err = pgp.ParsePrivateKey(cfg.PrivateKey, []byte(cfg.Passphrase)); err != nil {
		problems = append(problems, fmt.Errorf("passbolt: PASSBOLT_PRIVATE_KEY: %w", err))
	}
	var dec *pgp.Decrypter
	if key != nil {
		if dec, err = pgp.NewDecrypter(key); err != nil {
			problems = append(problems, fmt.Errorf("passbolt: PASSBOLT_PRIVATE_KEY: %w", err))
		}
	}
	if len(problems) > 0 {
		return nil, errors.Join(problems...)
	}
	return &Client{
		base:     base,
		pin:      strings.TrimSpace(cfg.ServerFingerprint),
		mode:     mode,
		key:      key,
		dec:      dec,
		http:     opt.NewHTTP("passbolt"),
		now:      time.Now,
		userID:   userID,
		metaKeys: map[string]*pgp.Decrypter{},
	}, nil
}
