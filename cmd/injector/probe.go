package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

func probeCommand() *command {
	var timeout time.Duration
	return &command{
		name: "probe", summary: "check an HTTP endpoint, for container health checks: exit 0 on 2xx",
		args: "URL", minArgs: 1, maxArgs: 1,
		about: `probe sends one GET to URL and exits 0 when the answer is 2xx, 1 when it is
anything else (redirects are not followed), the connection fails or
--timeout passes. It is the health check of images without curl or wget,
such as injector's own (distroless): point it at a sidecar's /readyz. It
reads no settings and sends no credentials; it goes straight to URL, never
through a proxy. On failure it prints why on stderr, with the first line of
the answer.`,
		examples: []example{
			{"Is the sidecar's last render fresh?", "injector probe http://127.0.0.1:8099/readyz"},
			{`A Compose healthcheck: test: ["CMD", "injector", "probe", "--timeout", "2s", "http://127.0.0.1:8099/readyz"]`, "injector probe --timeout 2s http://127.0.0.1:8099/readyz"},
		},
		flags: func(f *flagSet) {
			f.durationVar(&timeout, "timeout", 5*time.Second, "give up after D, connecting and reading included")
		},
		run: func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
			return cmdProbe(ctx, args[0], timeout)
		},
	}
}

// cmdProbe GETs rawURL and succeeds on a 2xx answer within timeout.
func cmdProbe(ctx context.Context, rawURL string, timeout time.Duration) error {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return usageErr(fmt.Errorf("probe: %q: want an http:// or https:// URL, like http://127.0.0.1:8099/readyz", rawURL))
	}
	if u.User != nil {
		return usageErr(errors.New("probe: the URL must not hold credentials"))
	}
	if timeout <= 0 {
		return usageErr(errors.New("probe: --timeout must be positive"))
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.Proxy = nil // a health check tests this path, not a proxy's
	client := &http.Client{
		Transport:     transport,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	defer transport.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return usageErr(fmt.Errorf("probe: %w", err))
	}
	req.Header.Set("User-Agent", "injector-probe")
	resp, err := client.Do(req)
	if err != nil {
		if ctx.Err() == context.DeadlineExceeded {
			return fmt.Errorf("probe: GET %s: no answer within %s", u.Redacted(), timeout)
		}
		return fmt.Errorf("probe: GET %s: %w", u.Redacted(), unwrapURLError(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	msg := fmt.Sprintf("probe: GET %s: HTTP %s", u.Redacted(), resp.Status)
	// The first line of the answer says why, as /readyz does; bounded, so
	// a hostile endpoint cannot flood the health log.
	line, _ := bufio.NewReader(io.LimitReader(resp.Body, 200)).ReadString('\n')
	line = strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return -1 // no escape sequences into a terminal or a log
		}
		return r
	}, strings.ToValidUTF8(line, "?"))
	if line = strings.TrimSpace(line); line != "" {
		msg += ": " + line
	}
	return errors.New(msg)
}

// unwrapURLError drops the *url.Error wrapper, which repeats method and URL.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
