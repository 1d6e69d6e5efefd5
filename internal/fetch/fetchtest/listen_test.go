package fetchtest

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

var hello = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello") })

// get fetches url with a client that trusts pool (nil: the system's) and
// returns the body.
func get(t *testing.T, pool *x509.CertPool, url string) (string, error) {
	t.Helper()
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// The zero Listen is httptest.NewServer: plain HTTP on 127.0.0.1.
func TestStartDefault(t *testing.T) {
	srv, url := Start(hello, Listen{})
	defer srv.Close()
	if url != srv.URL || !strings.HasPrefix(url, "http://127.0.0.1:") {
		t.Fatalf("url %q, server %q", url, srv.URL)
	}
	if body, err := get(t, nil, url); err != nil || body != "hello" {
		t.Fatalf("GET: %q, %v", body, err)
	}
}

// With TLS, the URL names the host given, and only a client that trusts
// the CA gets through, by a name the certificate lists.
func TestStartTLSWithHost(t *testing.T) {
	ca, err := NewCA()
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := ca.ServerTLS("localhost", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv, url := Start(hello, Listen{Listener: ln, TLS: cfg, Host: "localhost"})
	defer srv.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	if url != "https://localhost:"+port {
		t.Fatalf("url = %q, want https://localhost:%s", url, port)
	}
	for _, u := range []string{url, "https://127.0.0.1:" + port} {
		if body, err := get(t, ca.Pool(), u); err != nil || body != "hello" {
			t.Errorf("GET %s trusting the CA: %q, %v", u, body, err)
		}
	}
	// The CA's PEM is what a client loads (INJECTOR_CA_FILE).
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca.PEM) {
		t.Fatal("CA PEM holds no certificate")
	}
	if body, err := get(t, pool, url); err != nil || body != "hello" {
		t.Errorf("GET trusting the CA's PEM: %q, %v", body, err)
	}

	if _, err := get(t, nil, url); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("GET without the CA: %v, want a certificate error", err)
	}
	other, err := NewCA()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := get(t, other.Pool(), url); err == nil {
		t.Error("a client trusting another CA got through")
	}
}

// TLS without a listener: a new loopback port, over HTTPS.
func TestStartTLSLoopback(t *testing.T) {
	ca, err := NewCA()
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := ca.ServerTLS("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	srv, url := Start(hello, Listen{TLS: cfg})
	defer srv.Close()
	if !strings.HasPrefix(url, "https://127.0.0.1:") {
		t.Fatalf("url = %q", url)
	}
	if body, err := get(t, ca.Pool(), url); err != nil || body != "hello" {
		t.Fatalf("GET: %q, %v", body, err)
	}
	if _, err := get(t, ca.Pool(), strings.Replace(url, "127.0.0.1", "localhost", 1)); err == nil ||
		!strings.Contains(err.Error(), "certificate") {
		t.Errorf("GET by a name the certificate lacks: %v, want a certificate error", err)
	}
}

func TestServerCertificate(t *testing.T) {
	ca, err := NewCA()
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := ca.ServerTLS("192.0.2.7", "dev.example.test")
	if err != nil {
		t.Fatal(err)
	}
	chain := cfg.Certificates[0].Certificate
	leaf, err := x509.ParseCertificate(chain[0])
	if err != nil {
		t.Fatal(err)
	}
	if len(leaf.IPAddresses) != 1 || !leaf.IPAddresses[0].Equal(net.ParseIP("192.0.2.7")) || len(leaf.DNSNames) != 1 || leaf.DNSNames[0] != "dev.example.test" {
		t.Errorf("SANs: %v %v", leaf.IPAddresses, leaf.DNSNames)
	}
	for _, name := range []string{"192.0.2.7", "dev.example.test"} {
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: ca.Pool(), DNSName: name}); err != nil {
			t.Errorf("verify as %s: %v", name, err)
		}
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: ca.Pool(), DNSName: "192.0.2.8"}); err == nil {
		t.Error("the certificate verifies for an address it does not list")
	}
	if leaf.IsCA || leaf.NotAfter.Sub(leaf.NotBefore) > validity+2*time.Hour {
		t.Errorf("leaf: IsCA %v, valid %v to %v", leaf.IsCA, leaf.NotBefore, leaf.NotAfter)
	}
	if b, _ := pem.Decode(ca.PEM); b == nil || b.Type != "CERTIFICATE" {
		t.Errorf("CA PEM: %q", ca.PEM)
	}
	if _, err := ca.ServerTLS(); err == nil {
		t.Error("a certificate for no host")
	}
}
