package webhook

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// Server serves the webhook over TLS: /mutate, plus /healthz and /readyz
// for the Deployment's probes.
type Server struct {
	Addr     string // like ":8443"
	CertFile string // PEM certificate chain
	KeyFile  string // PEM private key
	Handler  *Handler
	Log      zerolog.Logger
}

// ListenAndServe loads the certificate (failing fast when it is unusable),
// listens on s.Addr and serves until ctx is done, then shuts down gracefully.
func (s *Server) ListenAndServe(ctx context.Context) error {
	certs := &certReloader{certFile: s.CertFile, keyFile: s.KeyFile, log: s.Log}
	if _, err := certs.GetCertificate(nil); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", s.Addr)
	if err != nil {
		return fmt.Errorf("webhook: listen: %w", err)
	}
	return s.serve(ctx, ln, certs)
}

func (s *Server) serve(ctx context.Context, ln net.Listener, certs *certReloader) error {
	mux := http.NewServeMux()
	mux.Handle("/mutate", s.Handler)
	ok := func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok\n")) }
	mux.HandleFunc("/healthz", ok)
	mux.HandleFunc("/readyz", ok)

	srv := &http.Server{
		Handler:           mux,
		TLSConfig:         &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: certs.GetCertificate},
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       90 * time.Second,
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.ServeTLS(ln, "", "") }()
	s.Log.Info().Str("addr", ln.Addr().String()).Msg("webhook listening")

	select {
	case err := <-errc:
		return fmt.Errorf("webhook: serve: %w", err)
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil {
		return fmt.Errorf("webhook: shutdown: %w", err)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("webhook: serve: %w", err)
	}
	return nil
}

// renewWarning is how long before expiry loading a certificate warns.
const renewWarning = 30 * 24 * time.Hour

// certReloader hands out the serving certificate, reloading it when either
// file changes (cert-manager and kubelet Secret updates replace the files in
// place), so a rotated certificate needs no restart. A half-written pair
// (new cert, old key) fails to load; the old certificate stays in use and
// the next handshake tries again.
type certReloader struct {
	certFile, keyFile string
	log               zerolog.Logger

	mu      sync.Mutex
	cert    *tls.Certificate
	version [2]fileVersion
}

type fileVersion struct {
	mod  time.Time
	size int64
}

func (r *certReloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	v, err := r.stat()
	if err == nil && r.cert != nil && v == r.version {
		return r.cert, nil
	}
	if err == nil {
		var cert tls.Certificate
		cert, err = tls.LoadX509KeyPair(r.certFile, r.keyFile)
		if err == nil {
			r.cert, r.version = &cert, v
			// An expired certificate fails every labelled Pod's creation:
			// say so early. Generated ones are renewed by helm upgrade.
			ev := r.log.Info()
			if leaf := cert.Leaf; leaf != nil {
				if time.Until(leaf.NotAfter) < renewWarning {
					ev = r.log.Warn().Str("renew", "the certificate expires soon: renew it (helm upgrade, or check cert-manager)")
				}
				ev = ev.Time("expires", leaf.NotAfter)
			}
			ev.Str("cert", r.certFile).Msg("loaded TLS certificate")
			return r.cert, nil
		}
	}
	err = fmt.Errorf("webhook: load TLS certificate %s / key %s: %w", r.certFile, r.keyFile, err)
	if r.cert == nil {
		return nil, err
	}
	r.log.Warn().Err(err).Msg("keeping the previous TLS certificate")
	return r.cert, nil
}

func (r *certReloader) stat() ([2]fileVersion, error) {
	var v [2]fileVersion
	for i, name := range []string{r.certFile, r.keyFile} {
		fi, err := os.Stat(name)
		if err != nil {
			return v, err
		}
		v[i] = fileVersion{fi.ModTime(), fi.Size()}
	}
	return v, nil
}
