package webhook

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/injector-dev/injector/internal/testutil"
)

// selfSigned returns a PEM certificate and key for 127.0.0.1.
func selfSigned(t *testing.T, serial int64) (certPEM, keyPEM []byte, cert *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: "injector-webhook"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ = x509.ParseCertificate(der)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), cert
}

// writePair writes the files and stamps them with mod, so a rewrite within
// the file system's timestamp granularity still counts as a change.
func writePair(t *testing.T, certFile, keyFile string, certPEM, keyPEM []byte, mod time.Time) {
	t.Helper()
	for name, data := range map[string][]byte{certFile: certPEM, keyFile: keyPEM} {
		if err := os.WriteFile(name, data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(name, mod, mod); err != nil {
			t.Fatal(err)
		}
	}
}

func TestServerReloadsCertificate(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	cert1, key1, x1 := selfSigned(t, 1)
	cert2, key2, x2 := selfSigned(t, 2)
	start := time.Now().Add(-time.Minute)
	writePair(t, certFile, keyFile, cert1, key1, start)

	roots := x509.NewCertPool()
	roots.AddCert(x1)
	roots.AddCert(x2)
	// A new connection per request: each one is a fresh handshake.
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}, DisableKeepAlives: true}}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Handler: &Handler{Config: testConfig}, Log: zerolog.Nop()}
	var logs testutil.SyncBuffer
	certs := &certReloader{certFile: certFile, keyFile: keyFile, log: zerolog.New(&logs)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.serve(ctx, ln, certs) }()

	servedSerial := func() int64 {
		t.Helper()
		resp, err := client.Get("https://" + ln.Addr().String() + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if string(body) != "ok\n" {
			t.Errorf("/healthz = %q", body)
		}
		return resp.TLS.PeerCertificates[0].SerialNumber.Int64()
	}

	if got := servedSerial(); got != 1 {
		t.Errorf("serving serial %d, want 1", got)
	}
	// The test certificates expire within the hour: loading one warns.
	if l := logs.String(); !strings.Contains(l, `"level":"warn"`) || !strings.Contains(l, `"expires":"`) {
		t.Errorf("log does not warn about the expiry: %s", l)
	}
	writePair(t, certFile, keyFile, cert2, key2, start.Add(time.Second))
	if got := servedSerial(); got != 2 {
		t.Errorf("after rotation serving serial %d, want 2", got)
	}
	// A half-finished rotation (new cert, old key) keeps the last good pair.
	writePair(t, certFile, keyFile, cert1, key2, start.Add(2*time.Second))
	if got := servedSerial(); got != 2 {
		t.Errorf("with a mismatched pair serving serial %d, want 2", got)
	}

	cancel()
	if err := <-done; err != nil {
		t.Errorf("serve after cancel = %v, want nil (graceful shutdown)", err)
	}
}

func TestListenAndServeFailsFastWithoutCertificate(t *testing.T) {
	dir := t.TempDir()
	s := &Server{Addr: "127.0.0.1:0", CertFile: filepath.Join(dir, "missing.crt"), KeyFile: filepath.Join(dir, "missing.key"), Log: zerolog.Nop()}
	err := s.ListenAndServe(context.Background())
	if err == nil || !strings.Contains(err.Error(), "missing.crt") {
		t.Errorf("ListenAndServe = %v, want an error naming the certificate file", err)
	}
}
