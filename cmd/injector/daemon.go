package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/rs/zerolog"

	"github.com/injector-dev/injector/internal/cache"
	"github.com/injector-dev/injector/internal/daemon"
	"github.com/injector-dev/injector/internal/fetch"
	"github.com/injector-dev/injector/internal/mask"
	"github.com/injector-dev/injector/internal/metrics"
	"github.com/injector-dev/injector/internal/pipeline"
	"github.com/injector-dev/injector/internal/supervise"
)

// defaultMinInterval is the shortest --interval accepted without lowering
// --min-interval: a shared password manager should not be polled faster.
const defaultMinInterval = 30 * time.Second

// daemonOptions are the flags of run and render that keep injector running.
type daemonOptions struct {
	interval, minInterval          time.Duration
	waitForSecrets                 time.Duration
	splay, maxStale                optDuration // default derived from interval
	killTimeout, commandTimeout    time.Duration
	onChange                       listFlag
	onEnvChange, listen            string
	exitWhenChildExits, once, mask bool
}

func (d *daemonOptions) register(f *flagSet, withChild bool) {
	f.group("Daemon mode")
	f.durationVar(&d.interval, "interval", 0, "keep running and refresh every D; without it, render once")
	f.durationVar(&d.minInterval, "min-interval", defaultMinInterval, "refuse an --interval below D: every refresh calls the server (0: no minimum)")
	f.add(&d.splay, flagDoc{long: "splay", arg: "D", usage: "random extra delay up to D per interval (default interval/10)"})
	f.add(&d.maxStale, flagDoc{long: "max-stale", arg: "D", usage: "/readyz fails when the last successful refresh is older than D (default 3×interval)"})
	f.durationVar(&d.waitForSecrets, "wait-for-secrets", 0, "at startup, retry with backoff for up to D instead of failing at once")
	f.listVar(&d.onChange, "on-change", "ACTION", "when a rendered file changes: signal:SIGHUP (any signal), signal:SIGHUP:PROCESS, restart, command:CMD or none; DST=ACTION for one file (repeatable)")
	f.durationVar(&d.commandTimeout, "command-timeout", 30*time.Second, "time limit for command: actions")
	if withChild {
		f.stringVar(&d.listen, "listen", "ADDR", "", "serve /metrics, /healthz and /readyz on ADDR, e.g. :8099, while injector runs (daemon mode, or supervising CMD)")
	} else {
		f.stringVar(&d.listen, "listen", "ADDR", "", "serve /metrics, /healthz and /readyz on ADDR, e.g. :8099 (needs --interval)")
		f.boolVar(&d.once, "once", false, "render once and exit 0, even with --interval (Jobs, init containers)")
		return
	}
	f.group("Command")
	f.stringVar(&d.onEnvChange, "on-env-change", "ACTION", "restart", "when CMD's environment changes: restart, signal:SIG or none")
	f.durationVar(&d.killTimeout, "kill-timeout", supervise.DefaultKillTimeout, "grace period between SIGTERM and SIGKILL when stopping CMD")
	f.boolVar(&d.exitWhenChildExits, "exit-when-child-exits", true, "in daemon mode, exit with CMD's code when it exits (Kubernetes Jobs); =false keeps refreshing")
	f.boolVar(&d.mask, "mask", false, "replace secret values in CMD's stdout and stderr with ********")
}

// daemonConfig turns the flags into the daemon's configuration for the
// pipeline p and the command argv (empty for render).
func (d *daemonOptions) daemonConfig(p *pipeline.Pipeline, argv []string) (daemon.Config, error) {
	if d.interval > 0 && !d.once && d.interval < d.minInterval {
		return daemon.Config{}, fmt.Errorf("--interval %v is below --min-interval %v: every refresh calls the password manager, which other clients share; lower --min-interval only for a server that is yours", d.interval, d.minInterval)
	}
	cfg := daemon.Config{
		Interval: d.interval, Splay: d.splay.or(d.interval / 10), MaxStale: d.maxStale.or(3 * d.interval),
		WaitForSecrets: d.waitForSecrets,
		KillTimeout:    d.killTimeout, CommandTimeout: d.commandTimeout,
		ExitWhenChildExits: d.exitWhenChildExits, Once: d.once || d.interval == 0,
		Command: argv, Mask: d.mask, OnChange: map[string]daemon.Action{},
		// The child gets its own process group, so signals reach all of
		// it, unless a terminal is attached: then the terminal already
		// sends ^C to the whole foreground group.
		ProcessGroup: !onTerminal(),
		Forward:      forwarded(daemon.DefaultForward()),
		Reap:         os.Getpid() == 1,
	}
	dsts := map[string]bool{}
	for _, f := range p.Files() {
		dsts[f.Dst] = true
		cfg.Templates = append(cfg.Templates, f.Dst)
	}
	if len(p.EnvKeys()) > 0 {
		cfg.Templates = append(cfg.Templates, daemon.EnvTemplate)
	}
	for _, spec := range d.onChange {
		dst, action := "", spec
		if !isAction(spec) {
			var ok bool
			if dst, action, ok = strings.Cut(spec, "="); !ok {
				return cfg, fmt.Errorf("--on-change %q: want ACTION or DST=ACTION", spec)
			}
			if !dsts[dst] {
				return cfg, fmt.Errorf("--on-change %q: %q is not the destination of any -t template", spec, dst)
			}
		}
		a, err := daemon.ParseAction(action)
		if err != nil {
			return cfg, fmt.Errorf("--on-change %q: %w", spec, err)
		}
		if dst == "" {
			cfg.DefaultOnChange = a
		} else {
			cfg.OnChange[dst] = a
		}
	}
	if len(argv) == 0 {
		// A signal without a process name is for the child render lacks.
		needsChild := func(a daemon.Action) bool {
			return a.Kind == daemon.Restart || a.Kind == daemon.Signal && a.Process == ""
		}
		const hint = "render runs no command to signal or restart; name the process (signal:SIGHUP:PROCESS, e.g. an app in a Pod with shareProcessNamespace), use command:CMD, or injector run"
		for dst, a := range cfg.OnChange {
			if needsChild(a) {
				return cfg, fmt.Errorf("--on-change %s=%s: %s", dst, a, hint)
			}
		}
		if a := cfg.DefaultOnChange; needsChild(a) {
			return cfg, fmt.Errorf("--on-change %s: %s", a, hint)
		}
	}
	if d.onEnvChange != "" {
		a, err := daemon.ParseAction(d.onEnvChange)
		if err != nil {
			return cfg, fmt.Errorf("--on-env-change: %w", err)
		}
		cfg.OnEnvChange = a
	}
	return cfg, nil
}

// optDuration is a duration flag whose default depends on another flag.
type optDuration struct {
	d   time.Duration
	set bool
}

func (o *optDuration) String() string {
	if o == nil || !o.set {
		return ""
	}
	return o.d.String()
}

func (o *optDuration) Set(s string) error {
	d, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	o.d, o.set = d, true
	return nil
}

func (o optDuration) or(def time.Duration) time.Duration {
	if o.set {
		return o.d
	}
	return def
}

// onTerminal reports whether a terminal is attached. Then the child stays
// in injector's process group, where the terminal sends ^C and ^\ itself.
func onTerminal() bool { return isatty.IsTerminal(os.Stdin.Fd()) }

// forwarded drops SIGINT and SIGQUIT from sigs on a terminal, so the
// child does not get them twice.
func forwarded(sigs []os.Signal) []os.Signal {
	if !onTerminal() {
		return sigs
	}
	var out []os.Signal
	for _, s := range sigs {
		if s != syscall.SIGINT && s != syscall.SIGQUIT {
			out = append(out, s)
		}
	}
	return out
}

// isAction reports whether s is an action rather than DST=ACTION.
func isAction(s string) bool {
	for _, p := range []string{daemon.None, daemon.Restart, daemon.Signal + ":", daemon.Command + ":"} {
		if s == p || strings.HasPrefix(s, p) && strings.HasSuffix(p, ":") {
			return true
		}
	}
	return false
}

// refresher adapts the pipeline to the daemon and keeps the last outcome,
// which a one-shot run needs after the daemon has waited for secrets.
type refresher struct {
	p     *pipeline.Pipeline
	cache *cache.Dir       // nil: no ciphertext cache
	m     *metrics.Metrics // told which providers the cache served
	log   zerolog.Logger
	last  pipeline.Outcome

	// expiry remembers, per provider, the credential expiry last logged
	// and how urgent it was, so each step is logged once.
	expiry map[string]loggedExpiry
}

type loggedExpiry struct {
	at    time.Time
	level int
}

func (r *refresher) Refresh(ctx context.Context) (daemon.Changes, error) {
	if r.cache != nil {
		r.cache.Begin()
	}
	o, err := r.p.Refresh(ctx)
	r.credentials()
	if r.cache != nil && err == nil {
		// Only a good run replaces the cache: it then holds exactly what
		// resolving the templates takes. A failed write is a warning
		// (logged by the cache), never a failed refresh.
		_ = r.cache.Commit()
		r.m.CacheServed(r.cache.Served())
	}
	if err != nil {
		// Files replaced before a rename failed midway still need their
		// actions (see daemon.Refresher).
		return daemon.Changes{Files: o.Changed}, err
	}
	r.last = o
	return daemon.Changes{Files: o.Changed, Env: o.Env, EnvChanged: o.EnvChanged, Secrets: o.Secrets}, nil
}

// credentials publishes when each provider's credentials expire (metric,
// /readyz) and logs it with the time left: once when first known, then
// once more at each step closer (a day, an hour, expired).
func (r *refresher) credentials() {
	exp := r.p.CredentialExpiry()
	r.m.CredentialExpiry(exp)
	if r.expiry == nil {
		r.expiry = map[string]loggedExpiry{}
	}
	for provider, at := range exp {
		left := time.Until(at)
		level := 0
		switch {
		case left <= 0:
			level = 3
		case left < time.Hour:
			level = 2
		case left < metrics.ExpiryWarning:
			level = 1
		}
		if seen, ok := r.expiry[provider]; ok && seen.at.Equal(at) && seen.level >= level {
			continue
		}
		r.expiry[provider] = loggedExpiry{at: at, level: level}
		ev, msg := r.log.Info(), "credentials expire"
		switch level {
		case 1, 2:
			ev, msg = r.log.Warn(), "credentials expire soon: replace them (the _FILE is read again on every refresh)"
		case 3:
			ev, msg = r.log.Error(), "credentials expired: replace them (the _FILE is read again on every refresh)"
		}
		ev.Str("provider", provider).Time("expires_at", at.UTC()).Str("time_left", left.Round(time.Second).String()).Msg(msg)
	}
}

// startMetrics serves /metrics, /healthz and /readyz when --listen is set.
// The listener is opened before rendering so a port conflict fails fast.
func startMetrics(ctx context.Context, m *metrics.Metrics, addr string, log zerolog.Logger) error {
	if addr == "" {
		return nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return usageErr(fmt.Errorf("--listen: %w", err))
	}
	log.Info().Str("addr", ln.Addr().String()).Msg("serving /metrics, /healthz, /readyz")
	go func() {
		if err := m.ServeListener(ctx, ln); err != nil {
			log.Error().Err(err).Msg("metrics server stopped")
		}
	}()
	return nil
}

// runDaemon runs the daemon and turns its result into an exit error. A
// fatal error is logged (as JSON with --log-format json, like everything
// else the daemon says) rather than printed as text.
func runDaemon(ctx context.Context, cfg daemon.Config, r daemon.Refresher, m *metrics.Metrics, log zerolog.Logger) error {
	// Run handles SIGINT/SIGTERM itself (forwarding them to the child and
	// waiting for it), so it must not see them as a cancelled context;
	// one that came before it took over has cancelled ctx already.
	cfg.Interrupted = ctx.Done()
	code, err := daemon.Run(context.WithoutCancel(ctx), cfg, r, m, log)
	if err != nil {
		var pe *fs.PathError
		switch {
		case errors.Is(err, fetch.ErrConfig):
			code = exitUsage
		case errors.As(err, &pe) && pe.Op == "fork/exec":
			code = execErrorCode(err) // the command could not be started
		default:
			code = max(code, exitFailure)
		}
		log.Error().Err(err).Int("exit_code", code).Msg("giving up")
		return &exitError{code: code}
	}
	if code != 0 {
		return &exitError{code: code}
	}
	return nil
}

// superviseOnce runs the command as a child instead of exec'ing it: needed
// as PID 1 (to reap zombies) and with --mask (to filter its output). It
// forwards signals and returns the child's exit code.
func superviseOnce(ctx context.Context, argv, env, secrets []string, d *daemonOptions, stdout, stderr io.Writer) error {
	var reaper *supervise.Reaper
	if os.Getpid() == 1 {
		r, err := supervise.NewReaper(false)
		if err != nil {
			return err
		}
		defer r.Close()
		reaper = r
	}
	var flush []*mask.Writer
	if d.mask {
		o, e := mask.NewWriter(stdout, secrets, mask.Replacement), mask.NewWriter(stderr, secrets, mask.Replacement)
		flush = append(flush, o, e)
		stdout, stderr = o, e
	}
	// Signals are taken before the child starts, so none arriving while
	// it starts is lost; one that arrived earlier has cancelled ctx.
	fwdCtx, stop := context.WithCancel(context.Background())
	defer stop()
	sigs := supervise.Notify(fwdCtx, forwarded(supervise.DefaultSignals())...)
	if ctx.Err() != nil {
		return fmt.Errorf("run: %v before the command started", context.Cause(ctx))
	}
	child, err := supervise.Start(context.WithoutCancel(ctx), supervise.Spec{
		Path: argv[0], Args: argv[1:], Env: env, Stdin: os.Stdin, Stdout: stdout, Stderr: stderr,
		KillTimeout: d.killTimeout, ProcessGroup: !onTerminal(), Reaper: reaper,
	})
	if err != nil {
		return &exitError{code: execErrorCode(err), err: fmt.Errorf("run: %w", err)}
	}
	supervise.Relay(fwdCtx, child, sigs)
	code := child.Wait()
	for _, w := range flush {
		w.Close()
	}
	if code != 0 {
		return &exitError{code: code}
	}
	return nil
}

// logRetries logs every HTTP retry a provider makes: which request, the
// attempt, the delay with its unit and the setting behind it, so a slow or
// failing server is visible while it is retried.
func logRetries(log zerolog.Logger) func(fetch.Retry) {
	return func(r fetch.Retry) {
		setting := "INJECTOR_RETRY_ATTEMPTS, INJECTOR_RETRY_BASE_DELAY"
		if r.RetryAfter {
			setting = "the server's Retry-After (waited for up to 30s)"
		}
		log.Warn().Err(r.Err).Str("provider", r.Provider).Str("request", r.Method+" "+r.Path).
			Str("attempt", fmt.Sprintf("%d/%d", r.Attempt, r.MaxAttempts)).Str("retry_in", r.Delay.String()).
			Str("retry_setting", setting).Msg("retrying request")
	}
}
