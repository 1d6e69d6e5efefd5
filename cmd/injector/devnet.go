package main

import (
	"cmp"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/injector-dev/injector/internal/fetch"
	"github.com/injector-dev/injector/internal/fetch/fetchtest"
)

// devNetwork is where dev's emulators listen: by default new ports on
// 127.0.0.1 over plain HTTP; with --listen on a host of the user's choice
// and, with --tls (the default off loopback), over HTTPS with a CA made at
// start.
type devNetwork struct {
	host      string         // the host in the URLs; "" when not listening on a chosen host
	listeners []net.Listener // one per emulator, when host is set or TLS is on
	ca        *fetchtest.CA  // nil: plain HTTP
	tls       *tls.Config
}

// devEmulatorCount is how many emulators dev runs: with a fixed port P
// they take P, P+1 and P+2.
const devEmulatorCount = 3

// devListen is what --listen and --tls ask for.
type devListen struct {
	addr string // as given; "" for the default
	host string // the host in the URLs and the certificate
	port int    // the first emulator's port; 0: a free port each
	tls  bool
}

// parseDevListen reads --listen HOST[:PORT] ("" keeps 127.0.0.1) and
// --tls: given, or on exactly when HOST is not loopback. HOST must name
// this machine the way clients will reach it (it goes into the URLs and
// the certificate), so the wildcard addresses are refused; a fixed PORT
// leaves room for the three emulators. Plain HTTP off loopback is refused
// too: injector would refuse the URLs.
func parseDevListen(addr string, tlsFlag optBool) (devListen, error) {
	l := devListen{addr: addr, host: "127.0.0.1"}
	if strings.ContainsAny(addr, "/?#@ ") {
		return l, fmt.Errorf("--listen %q: want HOST or HOST:PORT, like 192.0.2.10 or devbox.example:8400", addr)
	}
	if addr != "" {
		host, portStr, err := net.SplitHostPort(addr)
		if err != nil {
			// No port: a name, an IPv4 address or an IPv6 address, bracketed or not.
			host, portStr = strings.TrimSuffix(strings.TrimPrefix(addr, "["), "]"), "0"
		}
		switch ip := net.ParseIP(host); {
		case host == "":
			return l, fmt.Errorf("--listen %q: name the host, e.g. --listen 192.0.2.10 or --listen devbox.example:8400", addr)
		case ip != nil && ip.IsUnspecified():
			return l, fmt.Errorf("--listen %q: name one address of this machine, as clients will reach it (it goes into the URLs and the certificate), not all of them", addr)
		case strings.ContainsAny(host, "[]"):
			return l, fmt.Errorf("--listen %q: want HOST or HOST:PORT, like 192.0.2.10 or devbox.example:8400", addr)
		}
		port, err := strconv.Atoi(portStr)
		if err != nil || port < 0 || port > 65535-(devEmulatorCount-1) {
			return l, fmt.Errorf("--listen %q: the port must be a number from 0 (a free port for each emulator) to %d (the emulators take it and the next %d)", addr, 65535-(devEmulatorCount-1), devEmulatorCount-1)
		}
		l.host, l.port = host, port
	}
	l.tls = tlsFlag.or(!fetch.LoopbackHost(l.host))
	if !l.tls && !fetch.LoopbackHost(l.host) {
		return l, fmt.Errorf("--listen %s with --tls=false: injector sends credentials over plain http to loopback only, so it would refuse these URLs; drop --tls=false", addr)
	}
	return l, nil
}

// open opens the listeners and makes the CA when TLS is on. Without
// --listen and --tls it opens nothing: the emulators take their defaults.
func (l devListen) open() (*devNetwork, error) {
	n := &devNetwork{}
	if l.addr == "" && !l.tls {
		return n, nil
	}
	if l.addr != "" {
		n.host = l.host
	}
	for i := range devEmulatorCount {
		p := 0
		if l.port != 0 {
			p = l.port + i
		}
		ln, err := net.Listen("tcp", net.JoinHostPort(l.host, strconv.Itoa(p)))
		if err != nil {
			n.close()
			return nil, fmt.Errorf("--listen %s: %w", cmp.Or(l.addr, l.host), err)
		}
		n.listeners = append(n.listeners, ln)
	}
	if !l.tls {
		return n, nil
	}
	// The certificate names the host as the URLs do, and the address
	// listened on when that is another name for it.
	hosts := []string{l.host}
	if ip := n.listeners[0].Addr().(*net.TCPAddr).IP.String(); ip != l.host {
		hosts = append(hosts, ip)
	}
	var err error
	if n.ca, err = fetchtest.NewCA(); err == nil {
		n.tls, err = n.ca.ServerTLS(hosts...)
	}
	if err != nil {
		n.close()
		return nil, err
	}
	return n, nil
}

// listen returns where emulator i serves.
func (n *devNetwork) listen(i int) fetchtest.Listen {
	l := fetchtest.Listen{TLS: n.tls, Host: n.host}
	if i < len(n.listeners) {
		l.Listener = n.listeners[i]
	}
	return l
}

// client returns the HTTP client dev's own render uses: it trusts the CA.
func (n *devNetwork) client() *http.Client {
	if n.ca == nil {
		return nil
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = &tls.Config{RootCAs: n.ca.Pool(), MinVersion: tls.VersionTLS12}
	return &http.Client{Transport: t, Timeout: 30 * time.Second}
}

// close closes listeners no emulator took over.
func (n *devNetwork) close() {
	for _, ln := range n.listeners {
		ln.Close()
	}
}

var errNoServe = errors.New("dev: --listen and --tls apply to --serve: without it dev exits once the examples are rendered")
