// Package passbolttest is a Passbolt server emulator for tests and for
// `injector dev`: real HTTP on loopback, the Passbolt response envelope,
// JWT and GPGAuth login with real OpenPGP keys generated at start, v4 and v5
// resources of every type, v4 (plain) and v5 (encrypted) folders, shared
// metadata keys, fault knobs and request counters.
//
// It answers the official client, go-passbolt, end to end: the settings
// and metadata settings it reads at login, the real resource type JSON
// schemas, and the writes (folders, resources of every type, updates,
// moves, deletes, shares, metadata session keys), validated as the real
// server validates them (writes.go).
//
// Like the real server it stores only ciphertext: secrets are encrypted to
// the user and signed by the user (the last writer), v5 metadata is
// encrypted to the shared metadata key or to the user key.
package passbolttest

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"time"

	"github.com/injector-dev/injector/internal/crypto/pgp"
	"github.com/injector-dev/injector/internal/fetch/fetchtest"
	"github.com/injector-dev/injector/internal/fetch/passbolt"
)

// Passphrase protects the emulated user's private key.
const Passphrase = "emulator passphrase"

// Server is a running emulator. Its methods are safe for concurrent use.
type Server struct {
	URL string
	srv *httptest.Server

	// Fixed at start.
	userID, userKeyID string
	userKey           *pgp.Key // private, unlocked
	userArmored       string   // private, locked with Passphrase
	serverKey         *pgp.Key // private

	mu          sync.Mutex
	metaKeys    []*metadataKey // shared metadata keys; the last one is used for new resources
	folders     []*folderRow
	resources   []*resourceRow
	types       []resourceTypeRow
	plainFolder bool // create missing folders as v4 (cleartext name)
	typeSet     TypeSettings
	keySet      KeySettings
	sessionKeys []*sessionKeysRow
	// seedNames remembers the names of the v5 folders Seed created, so
	// later entries land in them; like a client's memory, never served.
	seedNames map[string]string

	jwtOff      bool
	mfa         bool
	noContain   bool                 // contain[secret] is ignored, as by an old server
	access      map[string]time.Time // JWT access token → expiry
	refresh     map[string]bool      // unused refresh tokens
	nonces      map[string]bool      // used JWT verify tokens
	loginTokens map[string]bool      // pending GPGAuth stage-1 tokens
	sessions    map[string]bool
	csrf        map[string]bool // issued CSRF tokens
	issued      []string        // every token, session id and CSRF token ever issued
	logouts     int             // successful POST /auth/logout.json and /auth/jwt/logout.json
	faults      []*Fault

	total       int
	perPath     map[string]int
	writes      int            // non-authentication POST/PUT/PATCH/DELETE
	secretReads int            // secret accesses the server would log
	readsOf     map[string]int // secretReads by resource id
}

type metadataKey struct {
	id  string
	key *pgp.Key // private
}

// New generates the server, user and metadata keys and starts listening on
// 127.0.0.1, or as listen says (at most one; `injector dev --serve
// --listen`). Key generation uses Curve25519 and takes milliseconds.
func New(listen ...fetchtest.Listen) (*Server, error) {
	if len(listen) > 1 {
		return nil, fmt.Errorf("passbolttest: New takes at most one Listen, got %d", len(listen))
	}
	s := &Server{
		userID: newUUID(), userKeyID: newUUID(),
		access: map[string]time.Time{}, refresh: map[string]bool{}, nonces: map[string]bool{},
		loginTokens: map[string]bool{}, sessions: map[string]bool{}, csrf: map[string]bool{},
		perPath: map[string]int{}, readsOf: map[string]int{}, seedNames: map[string]string{},
	}
	var err error
	if s.serverKey, err = pgp.Generate("Passbolt Server", "server@passbolt.test"); err != nil {
		return nil, err
	}
	if s.userKey, err = pgp.Generate("Ada Admin", "ada@passbolt.test"); err != nil {
		return nil, err
	}
	if s.userArmored, err = pgp.ArmorPrivate(s.userKey, []byte(Passphrase)); err != nil {
		return nil, err
	}
	if err := s.RotateMetadataKey(); err != nil {
		return nil, err
	}
	s.types = defaultTypes()
	s.typeSet, s.keySet = DefaultTypeSettings(), KeySettings{PersonalKeys: true}
	var l fetchtest.Listen
	if len(listen) == 1 {
		l = listen[0]
	}
	s.srv, s.URL = fetchtest.Start(http.HandlerFunc(s.serveHTTP), l)
	return s, nil
}

// Close stops the server.
func (s *Server) Close() { s.srv.Close() }

// Config returns a client configuration that logs in to this server.
func (s *Server) Config() passbolt.Config {
	return passbolt.Config{
		URL: s.URL, UserID: s.userID, PrivateKey: s.userArmored, Passphrase: Passphrase,
		ServerFingerprint: pgp.Fingerprint(s.serverKey), Auth: passbolt.AuthAuto,
	}
}

// UserID returns the emulated user's id.
func (s *Server) UserID() string { return s.userID }

// ServerFingerprint returns the fingerprint of the server key.
func (s *Server) ServerFingerprint() string { return pgp.Fingerprint(s.serverKey) }

// RotateMetadataKey adds a new shared metadata key, shared with the user;
// resources added afterwards use it.
func (s *Server) RotateMetadataKey() error {
	k, err := pgp.Generate("Passbolt Metadata Key", "metadata@passbolt.test")
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.metaKeys = append(s.metaKeys, &metadataKey{id: newUUID(), key: k})
	s.mu.Unlock()
	return nil
}

// --- Fault knobs ---

// Fault makes requests to Path (URL path, e.g. "/folders.json"; "" = every
// path) slow or failing.
type Fault struct {
	Path       string
	Status     int    // HTTP status to answer with; 0 = answer normally (after Delay)
	RetryAfter string // Retry-After header value, if any
	Malformed  bool   // answer 200 with a body that is not JSON
	// Delay holds the response back this long, or until the client gives
	// up on the request (its context ends), like a server gone silent.
	Delay time.Duration
	Times int // how many requests are affected; 0 = every request
}

// AddFault installs a fault.
func (s *Server) AddFault(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, &f)
}

// ClearFaults removes all faults.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = nil
}

// ExpireAccessTokens makes every issued JWT access token expire now.
func (s *Server) ExpireAccessTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.access)
}

// RevokeRefreshTokens invalidates every refresh token (as if expired).
func (s *Server) RevokeRefreshTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.refresh)
}

// ExpireSessions ends every GPGAuth session.
func (s *Server) ExpireSessions() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.sessions)
}

// RotateCSRF invalidates every issued CSRF token.
func (s *Server) RotateCSRF() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.csrf)
}

// SetJWT turns the JWT plugin on or off (off: its routes answer 404).
func (s *Server) SetJWT(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.jwtOff = !on
}

// SetMFA makes the user's MFA pending: authenticated requests are
// redirected to /mfa/verify/error.json and JWT logins list the providers.
func (s *Server) SetMFA(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mfa = on
}

// SetContainSecret turns contain[secret] on /resources.json on or off.
// Off, the server drops it silently (as unknown query items are dropped),
// so rows come back without "secrets", as from a server without it.
func (s *Server) SetContainSecret(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.noContain = !on
}

// TypeSettings is what /metadata/types/settings.json says: which resource
// and folder formats clients create by default and which they may create.
// The server enforces the allow_* flags on writes.
type TypeSettings struct {
	DefaultResourceTypes string `json:"default_resource_types"` // "v4" or "v5"
	DefaultFolderType    string `json:"default_folder_type"`
	DefaultTagType       string `json:"default_tag_type"`
	DefaultCommentType   string `json:"default_comment_type"`
	V5Resources          bool   `json:"allow_creation_of_v5_resources"`
	V5Folders            bool   `json:"allow_creation_of_v5_folders"`
	V5Tags               bool   `json:"allow_creation_of_v5_tags"`
	V5Comments           bool   `json:"allow_creation_of_v5_comments"`
	V4Resources          bool   `json:"allow_creation_of_v4_resources"`
	V4Folders            bool   `json:"allow_creation_of_v4_folders"`
	V4Tags               bool   `json:"allow_creation_of_v4_tags"`
	V4Comments           bool   `json:"allow_creation_of_v4_comments"`
	Upgrade              bool   `json:"allow_v4_v5_upgrade"`
	Downgrade            bool   `json:"allow_v5_v4_downgrade"`
}

// DefaultTypeSettings are the emulator's: v5 resources by default (a new
// Passbolt 5 instance), v4 folders by default (v5 folders are newer and
// optional), both formats allowed so old and new clients can write, and
// v4 → v5 upgrades allowed.
func DefaultTypeSettings() TypeSettings {
	return TypeSettings{
		DefaultResourceTypes: "v5", DefaultFolderType: "v4", DefaultTagType: "v4", DefaultCommentType: "v4",
		V5Resources: true, V5Folders: true, V4Resources: true, V4Folders: true, V4Tags: true, V4Comments: true,
		Upgrade: true,
	}
}

// KeySettings is what /metadata/keys/settings.json says.
type KeySettings struct {
	// PersonalKeys allows v5 metadata encrypted to the user's own key
	// (metadata_key_type "user_key"), the default on a real server.
	PersonalKeys  bool `json:"allow_usage_of_personal_keys"`
	ZeroKnowledge bool `json:"zero_knowledge_key_share"`
}

// SetTypeSettings replaces the metadata type settings.
func (s *Server) SetTypeSettings(t TypeSettings) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.typeSet = t
}

// SetKeySettings replaces the metadata key settings.
func (s *Server) SetKeySettings(k KeySettings) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keySet = k
}

// PlainFolders makes Add/Seed create missing folders as v4 folders with a
// cleartext name instead of v5 folders with encrypted metadata.
func (s *Server) PlainFolders(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.plainFolder = on
}

// --- Counters ---

// Logouts returns how many sessions were ended by POST /auth/logout.json
// (GPGAuth) or /auth/jwt/logout.json (JWT).
func (s *Server) Logouts() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.logouts
}

// LiveSessions returns how many logins are still usable: GPGAuth
// sessions plus unrevoked JWT refresh tokens (an access token dies by
// itself within minutes; its refresh token is what a logout revokes).
func (s *Server) LiveSessions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sessions) + len(s.refresh)
}

// Issued returns every credential the server has handed out: JWT access
// and refresh tokens, session ids and CSRF tokens, live or not, so a
// test can check that none is kept anywhere.
func (s *Server) Issued() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.issued)
}

// Requests returns the number of requests served.
func (s *Server) Requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.total
}

// RequestsTo returns the number of requests to one URL path.
func (s *Server) RequestsTo(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.perPath[path]
}

// Writes returns the number of non-authentication write requests
// (POST/PUT/PATCH/DELETE outside /auth/); a read-only client makes none.
func (s *Server) Writes() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.writes
}

// SecretReads returns how many secret accesses the server would log.
func (s *Server) SecretReads() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.secretReads
}

// SecretReadsByResource returns the logged secret accesses per resource
// id, through /secrets/resource/{id}.json and contain[secret] alike.
func (s *Server) SecretReadsByResource() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.readsOf)
}

// ResetCounters zeroes all counters.
func (s *Server) ResetCounters() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.total, s.writes, s.secretReads = 0, 0, 0
	clear(s.perPath)
	clear(s.readsOf)
}

func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
