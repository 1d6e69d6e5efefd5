package fetchtest

import (
	"crypto/tls"
	"net"
	"net/http"
	"net/http/httptest"
)

// Listen says where and how an emulator serves. The zero value is what the
// tests use: a new port on 127.0.0.1, plain HTTP, exactly as
// httptest.NewServer. `injector dev --serve --listen` fills it in to make
// the emulators reachable from containers and other machines.
type Listen struct {
	// Listener is the socket to serve on; nil means a new one on
	// 127.0.0.1 with a port the kernel picks.
	Listener net.Listener
	// TLS, when set, serves HTTPS with this configuration (its
	// Certificates must be set).
	TLS *tls.Config
	// Host is the host name clients put in URLs (an IP address or a DNS
	// name the certificate covers); "" means the listener's IP address.
	Host string
}

// Start starts an HTTP server for h as l says and returns it with the base
// URL clients use ("https://name:port", no trailing slash). Like
// httptest.NewServer it panics if it cannot listen.
func Start(h http.Handler, l Listen) (*httptest.Server, string) {
	if l.Listener == nil && l.TLS == nil {
		srv := httptest.NewServer(h)
		return srv, baseURL(srv, l.Host)
	}
	if l.Listener == nil {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			panic("fetchtest: listen: " + err.Error())
		}
		l.Listener = ln
	}
	srv := &httptest.Server{Listener: l.Listener, Config: &http.Server{Handler: h}}
	if l.TLS == nil {
		srv.Start()
	} else {
		srv.TLS = l.TLS
		srv.StartTLS()
	}
	return srv, baseURL(srv, l.Host)
}

// baseURL is srv.URL with host in place of the listener's IP address.
func baseURL(srv *httptest.Server, host string) string {
	if host == "" {
		return srv.URL
	}
	scheme := "http"
	if srv.TLS != nil {
		scheme = "https"
	}
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	return scheme + "://" + net.JoinHostPort(host, port)
}
