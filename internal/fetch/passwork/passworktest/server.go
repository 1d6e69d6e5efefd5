// Package passworktest is a Passwork server emulator for tests and
// `injector dev`. It speaks both API generations over real HTTP — Passwork 7
// (/api/v1) and the legacy Passwork 4–6 API (/api/v4) — and stores only what a
// real server stores: ciphertext produced the way the official clients
// produce it (RSA-wrapped vault keys, AESpw item keys and values, encrypted
// custom fields, attachments with the quirky hash), or plain base64 for
// vaults seeded with client-side encryption off.
//
// On /api/v1 it also takes the official SDK's writes (vaults, folders,
// items, shortcuts; v7writes.go), storing the client's ciphertext as sent,
// serves shortcuts and the search filters, and answers every error —
// unknown routes and methods included — in the API's JSON error shape.
//
// Fault knobs (AddFault, ExpireAccessTokens, ExpireSessions) and a request
// counter let tests assert retries, token rotation and request budgets.
package passworktest

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"time"

	pwcrypto "github.com/injector-dev/injector/internal/crypto/passwork"
	"github.com/injector-dev/injector/internal/fetch/fetchtest"
	"github.com/injector-dev/injector/internal/fetch/passwork"
)

// Option configures a Server.
type Option func(*options)

type options struct {
	iterations     int
	masterPassword string
	rsaBits        int
	noSearchPaths  bool
	oaep           bool
	plainVaults    map[string]bool
	domainVaults   map[string]bool
	legacySupport  bool
	md5Attachments bool
	noCSE          bool
	digest         string
	noDomainMaster bool
	noAccessRotate bool
	noItemKeys     bool
	legacyVaultPwd bool
	maxBatch       int
	noHashCheck    bool
	alwaysBase64   bool
	listen         fetchtest.Listen
}

// WithPBKDF2Iterations sets the master-key PBKDF2 iteration count (default
// 1000, far below the product's 300000, to keep tests fast).
func WithPBKDF2Iterations(n int) Option { return func(o *options) { o.iterations = n } }

// WithMasterPassword sets the user's master password (default "emulator master password").
func WithMasterPassword(p string) Option { return func(o *options) { o.masterPassword = p } }

// WithRSABits sets the user key size (default 1024, like web-created keys).
func WithRSABits(n int) Option { return func(o *options) { o.rsaBits = n } }

// WithOAEP wraps vault keys with RSA-OAEP-SHA256 (newer SDK) instead of
// PKCS#1 v1.5 (web client).
func WithOAEP() Option { return func(o *options) { o.oaep = true } }

// WithPlainVaults seeds the named vaults with client-side encryption off:
// plain base64 values and null keys.
func WithPlainVaults(names ...string) Option {
	return func(o *options) {
		for _, n := range names {
			o.plainVaults[n] = true
		}
	}
}

// WithDomainVaults makes the named vaults organisation ("domain") vaults on
// the v4 API: their password is wrapped with a domain master key.
func WithDomainVaults(names ...string) Option {
	return func(o *options) {
		for _, n := range names {
			o.domainVaults[n] = true
		}
	}
}

// WithLegacySupport makes /api/v4/info/version report legacySupport, so the
// master hash header is MD5. Attachment hashes stay SHA-256: the official
// connectors write and check SHA-256 whatever the server reports.
func WithLegacySupport() Option { return func(o *options) { o.legacySupport = true } }

// WithMD5AttachmentHashes stores MD5 attachment hashes (of the same
// Latin-1-as-UTF-8 string), as attachments uploaded by old legacy-mode web
// clients carry them.
func WithMD5AttachmentHashes() Option { return func(o *options) { o.md5Attachments = true } }

// WithoutClientSideEncryption makes the whole server run with client-side
// encryption off: every vault is plain, and a v4 login that asks to use a
// master password is refused with clientSideEncryptionDisabled.
func WithoutClientSideEncryption() Option { return func(o *options) { o.noCSE = true } }

// WithoutDomainMaster serves organisation (domain) vaults without their
// domainMaster, as a server that lost it would: they cannot be opened.
func WithoutDomainMaster() Option { return func(o *options) { o.noDomainMaster = true } }

// WithPBKDF2Digest sets the digest the master key options name (default
// sha256).
func WithPBKDF2Digest(d string) Option { return func(o *options) { o.digest = d } }

// WithoutRefreshAccessToken emulates a server older than 7.6 that lacks
// /sessions/refresh-access-token (404), leaving only /sessions/refresh.
func WithoutRefreshAccessToken() Option { return func(o *options) { o.noAccessRotate = true } }

// WithoutItemKeys stores entries encrypted directly under their vault key,
// with no per-item key (keyEncrypted / cryptedKey empty), as entries made
// by older clients are.
func WithoutItemKeys() Option { return func(o *options) { o.noItemKeys = true } }

// WithLegacyVaultPasswordField makes v4 vault objects carry the vault
// password in the legacy passwordCrypted field, with vaultPasswordCrypted
// holding a stale one (a different vault password under the same key).
// The official connectors prefer passwordCrypted, so a client that does
// too still decrypts every entry.
func WithLegacyVaultPasswordField() Option { return func(o *options) { o.legacyVaultPwd = true } }

// WithoutMasterKeyHashCheck makes the server accept any master key hash, so
// a wrong master key is only detected when the client decrypts its keys.
func WithoutMasterKeyHashCheck() Option { return func(o *options) { o.noHashCheck = true } }

// WithAlwaysBase64 ignores X-Response-Format: raw and always answers in the
// base64 envelope, like a server (or proxy) that drops the header.
func WithAlwaysBase64() Option { return func(o *options) { o.alwaysBase64 = true } }

// WithoutSearchPaths leaves "path" out of search results, like a server
// whose summaries lack it (the protocol notes only have third-party
// evidence that they carry it).
func WithoutSearchPaths() Option { return func(o *options) { o.noSearchPaths = true } }

// WithListen serves on l's listener, with its TLS and host name, instead of
// a new loopback port over plain HTTP (`injector dev --serve --listen`).
func WithListen(l fetchtest.Listen) Option { return func(o *options) { o.listen = l } }

// WithMaxBatch sets how many sub-requests /api/v1/batch accepts (default 100).
func WithMaxBatch(n int) Option { return func(o *options) { o.maxBatch = n } }

// Fault makes matching requests misbehave. A request matches when its URL
// path contains Path ("" matches all). Times limits how many requests are
// affected (0 = until cleared).
type Fault struct {
	Path       string
	Method     string        // "" matches any method
	Status     int           // respond with this status and an error body
	RetryAfter string        // Retry-After header value, with Status
	Body       string        // respond with this body verbatim (status Status, or 200)
	Delay      time.Duration // wait before handling (or before the fault response)
	Times      int
}

// Server is a running emulator. The zero value is not usable; use NewServer.
type Server struct {
	URL string

	http *httptest.Server
	mux  *http.ServeMux
	opts options

	mu sync.Mutex

	// What the server stores about the user: never plaintext keys.
	userID           string
	mkOptions        string
	masterKeyHash    string
	masterKeyHashMD5 string
	publicPEM        string
	privateEncrypted string
	apiKey           string

	// Session state.
	sessions   map[string]*session // v7 access token → session
	refreshes  map[string]string   // v7 refresh token → access token
	v4sessions map[string]*session // v4 token → session
	issued     []string            // every token ever issued, for leak tests
	logouts    int                 // v4 sessions ended by POST /auth/logout
	initAccess string
	initRefres string

	vaults    []*vault
	folders   []*folder
	items     []*item
	shortcuts []*shortcut
	bin       []*item // deleted items, as the server's recycle bin keeps them
	seq       int
	idx       index // id → record, kept in step with the lists above

	faults  []*Fault
	total   int
	perPath map[string]int

	// seeder plays the official client at write time: it knows the master
	// key and the plaintext vault keys so it can encrypt new entries. It is
	// never consulted when serving requests.
	seeder seeder
}

type seeder struct {
	masterKey string
	pub       *rsa.PublicKey
	vaultKeys map[string]string // vault id → vault key
}

type session struct {
	refresh string
	expired bool
	// useMaster (v4): the login said a master password is in use, so data
	// requests must carry its hash.
	useMaster bool
}

type vault struct {
	ID            string
	Name          string
	MasterKeyHash string // v7 writes: the client's hash of the vault key and salt
	Salt          string
	// apiCreated vaults came through POST /api/v1/vaults: the emulator
	// never learns their key, so it cannot seed them, and the v4 API (a
	// different server generation) does not show them.
	apiCreated         bool
	MasterKeyEncrypted *string // v7: RSA-wrapped vault key; nil with CSE off
	PasswordCrypted    *string // v4: AESpw(vault key, master key or domain master)
	StalePassword      *string // v4, WithLegacyVaultPasswordField: AESpw(another key, same passphrase)
	Scope              string  // v4: "domain" for organisation vaults
	DomainMaster       *string // v4: AESpw(domain master, master key)
}

type folder struct {
	ID, Name, VaultID, ParentID string
}

type custom struct {
	Name  string `json:"name"`
	Type  string `json:"type"`
	Value string `json:"value"`
}

type attachment struct {
	ID            string
	Name          string
	EncryptedKey  string
	EncryptedData string
	Hash          string
}

type item struct {
	ID, VaultID, FolderID   string
	Name, Login, URL, Descr string
	URLs, Tags              []string
	Color                   int
	PasswordEncrypted       string
	KeyEncrypted            *string
	Customs                 []custom
	Attachments             []*attachment
}

// shortcut places an item in another vault or folder. Its KeyEncrypted is
// the item key wrapped with the shortcut vault's key (nil with CSE off),
// so a user of that vault can decrypt the item without access to its own.
type shortcut struct {
	ID, ItemID, VaultID, FolderID string
	KeyEncrypted                  *string
}

// NewServer starts an emulator on 127.0.0.1 (or as WithListen says) with a
// fresh user (RSA key, master key, API token pair and v4 API key) and no
// data.
func NewServer(opts ...Option) *Server {
	o := options{
		iterations: 1000, masterPassword: "emulator master password", rsaBits: 1024,
		plainVaults: map[string]bool{}, domainVaults: map[string]bool{}, maxBatch: 100, digest: "sha256",
	}
	for _, opt := range opts {
		opt(&o)
	}
	if o.oaep && o.rsaBits < 2048 {
		o.rsaBits = 2048 // OAEP-SHA256 cannot wrap a 100-character key under 1024 bits
	}
	s := &Server{
		opts: o, sessions: map[string]*session{}, refreshes: map[string]string{},
		v4sessions: map[string]*session{}, perPath: map[string]int{}, idx: newIndex(),
		seeder: seeder{vaultKeys: map[string]string{}},
	}
	if err := s.initUser(); err != nil {
		panic("passworktest: " + err.Error()) // only on a broken crypto/rand
	}
	s.mux = http.NewServeMux()
	s.routesV7()
	s.routesV7Writes()
	s.routesV4()
	s.http, s.URL = fetchtest.Start(http.HandlerFunc(s.serve), o.listen)
	return s
}

func (s *Server) initUser() error {
	s.userID = s.newID()
	s.mkOptions = fmt.Sprintf("pbkdf:%s:%d:64:%s", s.opts.digest, s.opts.iterations, randomString(32))
	mk, err := pwcrypto.DeriveMasterKey(s.opts.masterPassword, s.mkOptions)
	if err != nil {
		return err
	}
	s.seeder.masterKey = mk
	s.masterKeyHash = pwcrypto.MasterKeyHash(mk)
	s.masterKeyHashMD5 = pwcrypto.MasterKeyHashMD5(mk)
	priv, err := rsa.GenerateKey(rand.Reader, s.opts.rsaBits)
	if err != nil {
		return err
	}
	s.seeder.pub = &priv.PublicKey
	spki, err := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	if err != nil {
		return err
	}
	s.publicPEM = string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: spki}))
	privPEM := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(priv)})
	if s.privateEncrypted, err = pwcrypto.Encrypt(string(privPEM), mk); err != nil {
		return err
	}
	s.apiKey = randomHex(20)
	s.initAccess, s.initRefres = s.issuePair()
	return nil
}

// Close shuts the server down.
func (s *Server) Close() { s.http.Close() }

// Config returns a client configuration for the Passwork 7 API with the
// token pair the server issued at start and the derived master key (what
// passwork-cli calls --master-key).
func (s *Server) Config() passwork.Config {
	return passwork.Config{
		URL: s.URL, API: "v1", Token: s.initAccess, RefreshToken: s.initRefres,
		MasterKey: s.seeder.masterKey, BatchSize: 25,
	}
}

// ConfigV4 returns a client configuration for the legacy /api/v4 API.
func (s *Server) ConfigV4() passwork.Config {
	return passwork.Config{URL: s.URL + "/api/v4", API: "v4", APIKey: s.apiKey, MasterKey: s.seeder.masterKey, BatchSize: 25}
}

// MasterPassword returns the user's master password, for tests of
// PASSWORK_MASTER_PASSWORD.
func (s *Server) MasterPassword() string { return s.opts.masterPassword }

// ItemIDs returns the ids of the entries seeded at path, in seeding order.
func (s *Server) ItemIDs(path string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ids []string
	for _, it := range s.items {
		if s.itemPath(it) == path {
			ids = append(ids, it.ID)
		}
	}
	return ids
}

// TamperAttachmentHash replaces the stored hash of an attachment, so the
// client's integrity check must fail.
func (s *Server) TamperAttachmentHash(path, file string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, it := range s.items {
		if s.itemPath(it) != path {
			continue
		}
		for _, a := range it.Attachments {
			if a.Name == file {
				a.Hash = strings.Repeat("0", len(a.Hash))
				return nil
			}
		}
	}
	return fmt.Errorf("passworktest: no attachment %q on %q", file, path)
}

// AddFault installs a fault; faults are checked in order.
func (s *Server) AddFault(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fc := f
	s.faults = append(s.faults, &fc)
}

// ClearFaults removes all faults.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = nil
}

// ExpireAccessTokens makes every current v7 access token expired, as if its
// lifetime had passed. Refreshing still works.
func (s *Server) ExpireAccessTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, se := range s.sessions {
		se.expired = true
	}
}

// ExpireSessions makes every current v4 session expired (apiSessionExpired).
func (s *Server) ExpireSessions() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, se := range s.v4sessions {
		se.expired = true
	}
}

// Logouts returns how many v4 sessions POST /api/v4/auth/logout ended.
func (s *Server) Logouts() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.logouts
}

// LiveV4Sessions returns how many v4 sessions are open (logged in, not
// logged out; the emulator never expires them by time).
func (s *Server) LiveV4Sessions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.v4sessions)
}

// Issued returns every token the server has handed out (v7 pairs, v4
// sessions), live or not, so a test can check that none is kept anywhere.
func (s *Server) Issued() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.issued)
}

// Requests returns how many HTTP requests the server has received since the
// last ResetCounters (batch sub-requests are not counted separately).
func (s *Server) Requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.total
}

// RequestsTo returns how many requests had a URL path containing substr.
func (s *Server) RequestsTo(substr string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for p, c := range s.perPath {
		if strings.Contains(p, substr) {
			n += c
		}
	}
	return n
}

// ResetCounters zeroes the request counters.
func (s *Server) ResetCounters() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.total = 0
	s.perPath = map[string]int{}
}

// serve counts the request, applies any fault, then routes it.
func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.total++
	s.perPath[r.Method+" "+r.URL.Path]++
	var fault *Fault
	for _, f := range s.faults {
		if f.Times < 0 || !strings.Contains(r.URL.Path, f.Path) || (f.Method != "" && f.Method != r.Method) {
			continue
		}
		fc := *f
		fault = &fc
		if f.Times > 0 {
			if f.Times--; f.Times == 0 {
				f.Times = -1 // used up
			}
		}
		break
	}
	s.mu.Unlock()

	if fault != nil {
		if fault.Delay > 0 {
			select {
			case <-time.After(fault.Delay):
			case <-r.Context().Done():
				return
			}
		}
		if fault.Body != "" || fault.Status != 0 {
			status := fault.Status
			if status == 0 {
				status = http.StatusOK
			}
			if fault.RetryAfter != "" {
				w.Header().Set("Retry-After", fault.RetryAfter)
			}
			body := fault.Body
			if body == "" {
				// The server's own error shape: the v4 envelope, or the
				// v7 error list in the base64 envelope unless raw.
				code := fmt.Sprintf("injectedFault%d", status)
				if strings.HasPrefix(r.URL.Path, "/api/v4/") {
					writeV4(w, status, code, nil)
				} else {
					writeV7Error(w, r, status, code, "injected fault")
				}
				return
			}
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			w.Write([]byte(body))
			return
		}
	}
	if s.opts.alwaysBase64 {
		r.Header.Del("X-Response-Format")
	}
	s.route(w, r)
}

// route dispatches to the mux. A request no route matches gets the API's
// own error shape, never Go's plain-text 404/405: clients parse every
// error body as JSON.
func (s *Server) route(w http.ResponseWriter, r *http.Request) {
	h, pattern := s.mux.Handler(r)
	if pattern != "" {
		s.mux.ServeHTTP(w, r) // not h: only the mux sets the path values
		return
	}
	// The mux answers 404 or 405 (with Allow); keep its verdict, not its body.
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	if allow := rec.Header().Get("Allow"); allow != "" {
		w.Header().Set("Allow", allow)
	}
	status := rec.Code
	if strings.HasPrefix(r.URL.Path, "/api/v4/") {
		code := "notFound"
		if status == http.StatusMethodNotAllowed {
			code = "methodNotAllowed"
		}
		writeV4(w, status, code, nil)
		return
	}
	if status == http.StatusMethodNotAllowed {
		writeV7Error(w, r, status, "methodNotAllowed", "Method "+r.Method+" is not allowed here")
		return
	}
	writeV7Error(w, r, http.StatusNotFound, "notFound", "Route not found")
}

// newID returns a 24-hex-digit id like the server's ObjectIds. Callers hold mu
// or are single-threaded.
func (s *Server) newID() string {
	s.seq++
	return fmt.Sprintf("6650%012x%08x", time.Now().Unix(), s.seq)
}

const keyAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789@!"

// randomString returns n characters from the SDK's key alphabet.
func randomString(n int) string {
	b := make([]byte, n)
	max := big.NewInt(int64(len(keyAlphabet)))
	for i := range b {
		v, err := rand.Int(rand.Reader, max)
		if err != nil {
			panic("passworktest: crypto/rand: " + err.Error())
		}
		b[i] = keyAlphabet[v.Int64()]
	}
	return string(b)
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func (s *Server) issuePair() (access, refresh string) {
	access, refresh = randomHex(24), randomHex(24)
	s.sessions[access] = &session{refresh: refresh}
	s.refreshes[refresh] = access
	s.issued = append(s.issued, access, refresh)
	return access, refresh
}
