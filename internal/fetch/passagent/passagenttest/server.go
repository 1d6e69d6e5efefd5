// Package passagenttest is a PassAgent API emulator for tests and for
// `injector dev`: real HTTP on loopback, bearer-token auth, the paginated
// password list, the vault salt, CSRF tokens, reveal with its fail-closed
// limiter, soft delete with tombstones, legacy (pre-V3) records, sliding
// window rate limits, fault knobs and request counters.
//
// Like the real service it stores only ciphertext: Seed encrypts each entry
// the way the V3 web client does (docs/passagent.md), with a vault key it
// derives from MasterPassword.
package passagenttest

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"time"

	"github.com/injector-dev/injector/internal/crypto/envelope"
	"github.com/injector-dev/injector/internal/fetch/fetchtest"
	"github.com/injector-dev/injector/internal/fetch/passagent"
)

// MasterPassword is the emulated user's master password.
const MasterPassword = "emulator master password"

// FastKDF is a tiny Argon2id profile for tests (64 KiB, t=1, p=1).
func FastKDF() envelope.KDFParams {
	return envelope.KDFParams{MemoryKiB: 64, Iterations: 1, Parallelism: 1}
}

// Options configure a Server. The zero value is the documented service:
// the 64 MiB/t=3/p=4 KDF profile, CRUD 30 and reveal 20 per 60 s.
type Options struct {
	KDF envelope.KDFParams // zero: envelope.DefaultKDF()
	// CRUDLimit is the list/delete limit per CRUDWindow (default 30 per
	// 60s); a negative limit disables it (benchmarks).
	CRUDLimit  int
	CRUDWindow time.Duration
	// RevealLimit is the reveal limit per 60s (default 20).
	RevealLimit int
	// MaxPageLimit, when positive, silently clamps the list's limit to it
	// (reporting the clamped value in pagination.limit), like a server
	// with a lower cap than the documented 2000.
	MaxPageLimit int
	// Listen says where to serve; the zero value is a new loopback port
	// over plain HTTP (`injector dev --serve --listen` sets it).
	Listen fetchtest.Listen
	// TokenTTL, when positive, gives the bearer token an "exp" claim that
	// far ahead, and the server answers 401 once it has passed, as a
	// Supabase session token does; zero issues tokens that never expire
	// (`injector dev`).
	TokenTTL time.Duration
}

// Server is a running emulator. Its methods are safe for concurrent use.
type Server struct {
	URL string // server root; the API is under URL+"/api"
	srv *httptest.Server

	// Fixed at start.
	token    string
	tokenExp time.Time     // zero: never
	ttl      time.Duration // Options.TokenTTL
	maxLimit int
	kdf      envelope.KDFParams
	salt     []byte
	// advertised, when set, replaces kdf in the salt reply (AdvertiseKDF).
	advertised envelope.KDFParams
	vaultKey   []byte
	biKey      []byte

	mu          sync.Mutex
	records     []*Record
	tombstones  []Tombstone
	csrf        map[string]bool
	useKW       bool
	leakDeleted bool
	revealDown  bool
	faults      []*Fault
	crud        *limiter
	reveal      *limiter

	total   int
	perPath map[string]int
	reveals int
}

// Record is one stored row, as the list endpoint returns it.
type Record struct {
	ID                string   `json:"id"`
	UserID            string   `json:"user_id"`
	Name              string   `json:"name"`
	Website           string   `json:"website"`
	URL               string   `json:"url"`
	Tags              []string `json:"tags"`
	Category          *string  `json:"category"`
	Username          *string  `json:"username"`
	Password          *string  `json:"password"`
	Notes             *string  `json:"notes"`
	EncryptionVersion int      `json:"encryption_version"`
	WrappedItemKey    *string  `json:"wrapped_item_key"`
	EncryptedData     *string  `json:"encrypted_data"`
	DomainHash        string   `json:"domain_hash,omitempty"`
	NameHash          string   `json:"name_hash,omitempty"`
	UsernameHash      string   `json:"username_hash,omitempty"`
	SearchTokens      []string `json:"search_tokens"`
	ShareCount        int      `json:"share_count"`
	HasTOTP           bool     `json:"has_totp"`
	HasPasskey        bool     `json:"has_passkey"`
	PasskeyLabel      *string  `json:"passkey_label"`
	CreatedAt         string   `json:"created_at"`
	UpdatedAt         string   `json:"updated_at"`
	DeletedAt         *string  `json:"deleted_at,omitempty"`
}

// Tombstone marks a deleted record for sync clients.
type Tombstone struct {
	ID        string `json:"id"`
	DeletedAt string `json:"deleted_at"`
}

// Fault makes matching requests fail: the next Times requests whose path
// starts with Path ("" = any) get Status with Body (default: an error body
// in the overview shape) and, if set, a Retry-After header. Delay is slept
// before answering (a slow server; a Delay longer than the client waits is
// a server that accepts and never answers). Status 0 with a Body sends a
// 200 with that body (a malformed reply).
type Fault struct {
	Path       string
	Status     int
	Body       string
	RetryAfter string
	Delay      time.Duration
	Times      int
	// Bloat, when positive, answers with a 200 list page of about Bloat
	// bytes: well-formed records full of junk, streamed without a
	// Content-Length (a hostile server that wants the client's memory).
	Bloat int
}

// New derives the vault key and starts listening on 127.0.0.1, or as
// opt.Listen says.
func New(opt Options) (*Server, error) {
	if opt.KDF == (envelope.KDFParams{}) {
		opt.KDF = envelope.DefaultKDF()
	}
	if opt.CRUDLimit == 0 {
		opt.CRUDLimit = 30
	}
	if opt.CRUDWindow == 0 {
		opt.CRUDWindow = 60 * time.Second
	}
	if opt.RevealLimit == 0 {
		opt.RevealLimit = 20
	}
	s := &Server{
		kdf: opt.KDF, salt: randBytes(16), maxLimit: opt.MaxPageLimit, ttl: opt.TokenTTL,
		csrf: map[string]bool{}, perPath: map[string]int{},
		crud:   newLimiter(opt.CRUDLimit, opt.CRUDWindow),
		reveal: newLimiter(opt.RevealLimit, 60*time.Second),
	}
	s.token, s.tokenExp = s.newToken()
	var err error
	if s.vaultKey, err = envelope.DeriveVaultKey(MasterPassword, s.salt, s.kdf); err != nil {
		return nil, fmt.Errorf("passagenttest: %w", err)
	}
	if s.biKey, err = envelope.BlindIndexKey(s.vaultKey); err != nil {
		return nil, fmt.Errorf("passagenttest: %w", err)
	}
	s.srv, s.URL = fetchtest.Start(http.HandlerFunc(s.serveHTTP), opt.Listen)
	return s, nil
}

// Close stops the server.
func (s *Server) Close() { s.srv.Close() }

// Config returns a client configuration for this server that derives the
// vault key from the master password.
func (s *Server) Config() passagent.Config {
	return passagent.Config{URL: s.URL + "/api", Token: s.token, MasterPassword: MasterPassword, PageSize: passagent.DefaultPageSize}
}

// VaultKey returns the derived vault key in base64 (PASSAGENT_VAULT_KEY).
func (s *Server) VaultKey() string { return envelope.EncodeBase64(s.vaultKey) }

// Token returns the bearer token the server accepts.
func (s *Server) Token() string { return s.token }

// RotateToken invalidates the current token (a session that expired) and
// returns the new one.
func (s *Server) RotateToken() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.token, s.tokenExp = s.newToken()
	return s.token
}

// newToken issues a bearer token shaped like a Supabase session JWT
// (header.payload.signature, base64url): the payload names the user and,
// with a TokenTTL, carries "exp". The signature is random: only this
// server checks the token, by comparing it whole.
func (s *Server) newToken() (string, time.Time) {
	claims := map[string]any{"sub": "emulator-user", "role": "authenticated", "session_id": randHex(16)}
	var exp time.Time
	if s.ttl > 0 {
		exp = time.Now().Add(s.ttl)
		claims["exp"] = exp.Unix()
	}
	payload, _ := json.Marshal(claims)
	enc := base64.RawURLEncoding
	return enc.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`)) + "." + enc.EncodeToString(payload) + "." + enc.EncodeToString(randBytes(32)), exp
}

// UseKeyWrap makes later Seed calls wrap item keys with AES-KW (the
// tolerated 40-byte form) instead of AES-GCM.
func (s *Server) UseKeyWrap(on bool) { s.mu.Lock(); s.useKW = on; s.mu.Unlock() }

// LeakDeleted makes the list return soft-deleted records too (with
// deleted_at set), as a broken server might; clients must ignore them.
func (s *Server) LeakDeleted(on bool) { s.mu.Lock(); s.leakDeleted = on; s.mu.Unlock() }

// RevealLimiterDown simulates the reveal limiter's store being unreachable:
// reveal fails closed with 503 and Retry-After.
func (s *Server) RevealLimiterDown(on bool) { s.mu.Lock(); s.revealDown = on; s.mu.Unlock() }

// AdvertiseKDF makes the salt reply advertise p instead of the parameters
// the vault key was derived with, as a hostile or broken server might:
// say, 1 GiB and 64 iterations. The zero value advertises the truth again.
func (s *Server) AdvertiseKDF(p envelope.KDFParams) { s.mu.Lock(); s.advertised = p; s.mu.Unlock() }

// AddFault queues a fault; faults apply in the order added.
func (s *Server) AddFault(f Fault) { s.mu.Lock(); s.faults = append(s.faults, &f); s.mu.Unlock() }

// ClearFaults drops every queued fault, used up or not.
func (s *Server) ClearFaults() { s.mu.Lock(); s.faults = nil; s.mu.Unlock() }

// Requests returns the number of requests received.
func (s *Server) Requests() int { s.mu.Lock(); defer s.mu.Unlock(); return s.total }

// RequestsTo returns the number of requests to one path ("/api/passwords").
func (s *Server) RequestsTo(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.perPath[path]
}

// Reveals returns the number of reveal calls, successful or not.
func (s *Server) Reveals() int { s.mu.Lock(); defer s.mu.Unlock(); return s.reveals }

// ResetCounters zeroes the request counters.
func (s *Server) ResetCounters() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.total, s.reveals, s.perPath = 0, 0, map[string]int{}
}

// Tombstones returns the tombstones of deleted records.
func (s *Server) Tombstones() []Tombstone {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Tombstone(nil), s.tombstones...)
}

func randBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func randHex(n int) string { return hex.EncodeToString(randBytes(n)) }

// limiter is a sliding-window counter, like the service's Redis limiter.
type limiter struct {
	limit  int
	window time.Duration
	hits   []time.Time
}

func newLimiter(limit int, window time.Duration) *limiter {
	return &limiter{limit: limit, window: window}
}

// allow records a hit and reports whether it is within the limit; if not,
// it returns how long until the oldest hit leaves the window.
func (l *limiter) allow(now time.Time) (bool, time.Duration) {
	if l.limit < 0 {
		return true, 0
	}
	cut := now.Add(-l.window)
	i := 0
	for i < len(l.hits) && !l.hits[i].After(cut) {
		i++
	}
	l.hits = l.hits[i:]
	if len(l.hits) >= l.limit {
		return false, l.hits[0].Add(l.window).Sub(now)
	}
	l.hits = append(l.hits, now)
	return true, 0
}
