package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/rs/zerolog"

	"github.com/injector-dev/injector/internal/fetch"
	"github.com/injector-dev/injector/internal/metrics"
	"github.com/injector-dev/injector/internal/render"
	"github.com/injector-dev/injector/internal/template"
)

// listFlag is a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }

// options are the flags shared by the commands that render templates.
type options struct {
	logLevel, logFormat, delims string
	owner                       string
	templates, envFiles, envs   listFlag
}

// settings is what injector reads from its environment.
type settings struct {
	LogLevel  string `env:"INJECTOR_LOG_LEVEL" envDefault:"info"`
	LogFormat string `env:"INJECTOR_LOG_FORMAT"`
	Delims    string `env:"INJECTOR_DELIMS" envDefault:"<< >>"`

	// Transport settings shared by every provider.
	HTTPTimeout    time.Duration `env:"INJECTOR_HTTP_TIMEOUT" envDefault:"30s"`
	CAFile         string        `env:"INJECTOR_CA_FILE"`
	RetryAttempts  int           `env:"INJECTOR_RETRY_ATTEMPTS" envDefault:"4"`
	RetryBaseDelay time.Duration `env:"INJECTOR_RETRY_BASE_DELAY" envDefault:"200ms"`

	Providers providerConfig

	// fromEnv is set when the settings came from the environment, so
	// they can be read again (credential rotation in daemon mode).
	fromEnv bool
}

// fetchOptions builds the transport every provider uses: the timeout, extra
// trusted CAs (self-hosted servers often use a private CA) and retries.
func (s *settings) fetchOptions(observe fetch.Observer) (fetch.Options, error) {
	if s.HTTPTimeout <= 0 || s.RetryAttempts <= 0 || s.RetryBaseDelay <= 0 {
		return fetch.Options{}, usageErr(errors.New("config: INJECTOR_HTTP_TIMEOUT, INJECTOR_RETRY_ATTEMPTS and INJECTOR_RETRY_BASE_DELAY must be positive"))
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	if s.CAFile != "" {
		pem, err := os.ReadFile(s.CAFile)
		if err != nil {
			return fetch.Options{}, usageErr(fmt.Errorf("config: INJECTOR_CA_FILE: %w", err))
		}
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return fetch.Options{}, usageErr(fmt.Errorf("config: INJECTOR_CA_FILE %s: no PEM certificate found", s.CAFile))
		}
		transport.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return fetch.Options{
		Client:      &http.Client{Timeout: s.HTTPTimeout, Transport: transport},
		Observe:     observe,
		MaxAttempts: s.RetryAttempts,
		BaseDelay:   s.RetryBaseDelay,
	}, nil
}

// newFlagSet returns a flag set with the shared flags, defaulting to the
// INJECTOR_* settings.
func newFlagSet(name string, s *settings, o *options, stderr io.Writer, withTemplates bool) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.logLevel, "log-level", s.LogLevel, "debug, info, warn or error (INJECTOR_LOG_LEVEL)")
	fs.StringVar(&o.logFormat, "log-format", s.LogFormat, "json or console; default console on a terminal, else json (INJECTOR_LOG_FORMAT)")
	fs.StringVar(&o.delims, "delims", s.Delims, "left and right template delimiters, space-separated (INJECTOR_DELIMS)")
	if withTemplates {
		fs.Var(&o.templates, "t", "file template `SRC:DST[:MODE]` (repeatable; MODE octal, default 0600)")
		fs.Var(&o.templates, "template", "same as -t")
		fs.Var(&o.envFiles, "env-file", "file of KEY=TEMPLATE lines (repeatable)")
		fs.Var(&o.envs, "env", "KEY=TEMPLATE environment variable for the command (repeatable)")
		fs.StringVar(&o.owner, "owner", "", "chown rendered files to numeric `UID[:GID]` (e.g. the app's user when injector runs as root)")
	}
	return fs
}

func loadSettings() (*settings, error) {
	s := &settings{fromEnv: true}
	if err := loadConfig(s, os.Environ()); err != nil {
		return nil, usageErr(err)
	}
	return s, nil
}

func newLogger(o *options, stderr io.Writer) (zerolog.Logger, error) {
	lvl, err := zerolog.ParseLevel(o.logLevel)
	if err != nil || o.logLevel == "" {
		return zerolog.Nop(), usageErr(fmt.Errorf("--log-level %q: want debug, info, warn or error", o.logLevel))
	}
	w := stderr
	format := o.logFormat
	if format == "" {
		format = "json"
		if f, ok := stderr.(*os.File); ok && isatty.IsTerminal(f.Fd()) {
			format = "console"
		}
	}
	switch format {
	case "json":
	case "console":
		w = zerolog.ConsoleWriter{Out: stderr, TimeFormat: "15:04:05"}
	default:
		return zerolog.Nop(), usageErr(fmt.Errorf("--log-format %q: want json or console", format))
	}
	return zerolog.New(w).Level(lvl).With().Timestamp().Logger(), nil
}

func parseDelims(s string) ([2]string, error) {
	f := strings.Fields(s)
	if len(f) != 2 {
		return [2]string{}, usageErr(fmt.Errorf("--delims %q: want two delimiters separated by a space, like \"<< >>\"", s))
	}
	return [2]string{f[0], f[1]}, nil
}

// isOwnSetting reports whether an environment variable configures injector
// itself; those are never passed to the child.
func isOwnSetting(key string) bool {
	for _, p := range []string{"INJECTOR_", "PASSWORK_", "PASSBOLT_", "PASSAGENT_"} {
		if strings.HasPrefix(key, p) {
			return true
		}
	}
	return false
}

// buildPipeline parses every template the flags name. Parse errors are all
// collected, so one run shows every broken template.
func buildPipeline(s *settings, o *options, opt fetch.Options, inheritEnv bool) (*pipeline, error) {
	p, problems, err := parsePipeline(s, o, opt, inheritEnv)
	if err != nil {
		return nil, err
	}
	if len(problems) > 0 {
		return nil, usageErr(problems)
	}
	return p, nil
}

// parsePipeline is buildPipeline that keeps going: it returns the pipeline
// of every template that parsed, and the problems of those that did not.
func parsePipeline(s *settings, o *options, opt fetch.Options, inheritEnv bool) (*pipeline, template.Errors, error) {
	delims, err := parseDelims(o.delims)
	if err != nil {
		return nil, nil, err
	}
	var reload func() (*providerConfig, error)
	if s.fromEnv {
		reload = reloadProviders
	}
	p := &pipeline{engine: &template.Engine{Providers: newProviders(&s.Providers, opt, reload)}}
	if o.owner != "" {
		if p.owner, err = parseOwner(o.owner); err != nil {
			return nil, nil, usageErr(err)
		}
	}
	var errs template.Errors
	for _, spec := range o.templates {
		fsp, err := parseFileSpec(spec)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		text, err := os.ReadFile(fsp.src)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		fsp.tpl, err = template.Parse(template.Source{Name: fsp.src}, string(text), delims)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		p.files = append(p.files, fsp)
	}
	if inheritEnv {
		keep, templated, err := childEnv(os.Environ(), delims, isOwnSetting)
		if err != nil {
			errs = append(errs, err)
		}
		p.baseEnv, p.envs = keep, templated
	}
	for _, path := range o.envFiles {
		specs, err := parseEnvFile(path, delims)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		p.envs = append(p.envs, specs...)
	}
	for i, kv := range o.envs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || !validEnvKey(k) {
			errs = append(errs, fmt.Errorf("--env %q: want KEY=TEMPLATE", kv))
			continue
		}
		tpl, err := template.Parse(template.Source{Name: fmt.Sprintf("--env #%d (%s)", i+1, k), Col: len(k) + 2}, v, delims)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		p.envs = append(p.envs, envSpec{key: k, tpl: tpl})
	}
	p.envs = dedupeEnv(p.envs)
	return p, errs, nil
}

// parseOwner parses --owner UID[:GID]; GID defaults to UID.
func parseOwner(s string) (*render.Owner, error) {
	u, g, hasGID := strings.Cut(s, ":")
	uid, err := strconv.Atoi(u)
	if err != nil || uid < 0 {
		return nil, fmt.Errorf("--owner %q: want numeric UID[:GID]", s)
	}
	gid := uid
	if hasGID {
		if gid, err = strconv.Atoi(g); err != nil || gid < 0 {
			return nil, fmt.Errorf("--owner %q: want numeric UID[:GID]", s)
		}
	}
	return &render.Owner{UID: uid, GID: gid}, nil
}

// dedupeEnv keeps the last definition of each key: later flags override
// earlier ones and the inherited environment, as in env(1).
func dedupeEnv(specs []envSpec) []envSpec {
	last := map[string]int{}
	for i, e := range specs {
		last[e.key] = i
	}
	var out []envSpec
	for i, e := range specs {
		if last[e.key] == i {
			out = append(out, e)
		}
	}
	return out
}

// setup does what every rendering command starts with.
func setup(name string, args []string, stderr io.Writer, withTemplates bool, extra func(*flag.FlagSet)) (*settings, *options, *flag.FlagSet, zerolog.Logger, error) {
	s, err := loadSettings()
	if err != nil {
		return nil, nil, nil, zerolog.Nop(), err
	}
	o := &options{}
	fs := newFlagSet(name, s, o, stderr, withTemplates)
	if extra != nil {
		extra(fs)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, nil, nil, zerolog.Nop(), &exitError{code: exitOK}
		}
		return nil, nil, nil, zerolog.Nop(), &exitError{code: exitUsage}
	}
	log, err := newLogger(o, stderr)
	if err != nil {
		return nil, nil, nil, zerolog.Nop(), err
	}
	return s, o, fs, log, nil
}

// cmdRender renders the -t templates: once (init container), or every
// --interval (sidecar).
func cmdRender(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var d daemonOptions
	s, o, fs, log, err := setup("render", args, stderr, true, func(fs *flag.FlagSet) { d.register(fs, false) })
	if err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageErr(fmt.Errorf("render: unexpected arguments %q (did you mean `injector run -- CMD`?)", fs.Args()))
	}
	if len(o.templates) == 0 {
		return usageErr(errors.New("render: no templates; give -t SRC:DST[:MODE]"))
	}
	m := metrics.New(version)
	opt, err := s.fetchOptions(m.Observer())
	if err != nil {
		return err
	}
	p, err := buildPipeline(s, o, opt, false)
	if err != nil {
		return err
	}
	cfg, err := d.daemonConfig(p, nil)
	if err != nil {
		return usageErr(err)
	}
	if err := startMetrics(ctx, m, d.listen, log); err != nil {
		return err
	}
	if cfg.Once && d.waitForSecrets == 0 && d.listen == "" {
		// The plain init-container case: no loop, errors straight to stderr.
		res, err := p.Refresh(ctx)
		if err != nil {
			return failureErr(err)
		}
		log.Info().Int("templates", len(p.files)).Int("references", res.Refs).Strs("changed", res.Changed).Msg("rendered")
		return nil
	}
	return runDaemon(ctx, cfg, &refresher{p: p}, m, log)
}

// cmdRun renders templates, then runs the command with the secrets in its
// environment: by exec(2) when injector has nothing left to do, as a
// supervised child otherwise (daemon mode, PID 1, --mask).
func cmdRun(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var d daemonOptions
	s, o, fs, log, err := setup("run", args, stderr, true, func(fs *flag.FlagSet) { d.register(fs, true) })
	if err != nil {
		return err
	}
	argv := fs.Args()
	if len(argv) == 0 {
		return usageErr(errors.New("run: no command; usage: injector run [flags] -- CMD ARGS..."))
	}
	path, err := exec.LookPath(argv[0])
	if err != nil {
		return usageErr(fmt.Errorf("run: %w", err))
	}
	m := metrics.New(version)
	opt, err := s.fetchOptions(m.Observer())
	if err != nil {
		return err
	}
	p, err := buildPipeline(s, o, opt, true)
	if err != nil {
		return err
	}
	cfg, err := d.daemonConfig(p, append([]string{path}, argv[1:]...))
	if err != nil {
		return usageErr(err)
	}
	if err := startMetrics(ctx, m, d.listen, log); err != nil {
		return err
	}
	if d.interval > 0 {
		return runDaemon(ctx, cfg, &refresher{p: p}, m, log)
	}

	// One-shot: render (waiting for secrets if asked to), then hand over.
	var res outcome
	if d.waitForSecrets > 0 || d.listen != "" {
		// Through the daemon's first refresh: it waits for secrets and
		// records the render in /metrics and /readyz.
		r := &refresher{p: p}
		if err := runDaemon(ctx, cfg, r, m, log); err != nil {
			return err
		}
		res = r.last
	} else if res, err = p.Refresh(ctx); err != nil {
		return failureErr(err)
	}
	log.Info().Int("templates", len(p.files)).Int("env", len(p.envs)).Int("references", res.Refs).Str("command", argv[0]).Msg("starting command")
	if os.Getpid() == 1 || d.mask || d.listen != "" {
		return superviseOnce(ctx, append([]string{path}, argv[1:]...), res.Env, res.Secrets, &d, stdout, stderr)
	}
	// exec keeps the PID, so the command receives signals sent to injector
	// directly and its exit code is the container's.
	if err := syscall.Exec(path, argv, res.Env); err != nil {
		return failureErr(fmt.Errorf("run: exec %s: %w", argv[0], err))
	}
	return nil
}

// cmdCheck resolves every reference without printing any value. It
// reports every problem at once: templates that do not parse, and every
// reference that does not resolve in those that do.
func cmdCheck(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	s, o, _, _, err := setup("check", args, stderr, true, nil)
	if err != nil {
		return err
	}
	opt, err := s.fetchOptions(nil)
	if err != nil {
		return err
	}
	p, problems, err := parsePipeline(s, o, opt, true)
	if err != nil {
		return err
	}
	parseFailed := len(problems) > 0
	out, err := p.engine.Render(ctx, p.templates())
	if err != nil {
		problems = append(problems, err)
	}
	if len(problems) > 0 {
		code := exitFailure
		if parseFailed {
			code = exitUsage
		}
		return &exitError{code: code, err: fmt.Errorf("check failed:\n%w", problems)}
	}
	fmt.Fprintf(stdout, "ok: %d templates, %d references resolved\n", len(p.templates()), out.Refs)
	return nil
}

// cmdGet prints one secret, for scripts.
func cmdGet(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var field string
	var noNewline bool
	// Flags may come after the reference: `injector get passwork:a/b --field login`.
	var ref string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		ref, args = args[0], args[1:]
	}
	s, _, fs, _, err := setup("get", args, stderr, false, func(fs *flag.FlagSet) {
		fs.StringVar(&field, "field", "password", "field to print")
		fs.BoolVar(&noNewline, "n", false, "do not print a trailing newline")
	})
	if err != nil {
		return err
	}
	if ref == "" && fs.NArg() > 0 {
		ref = fs.Arg(0)
	}
	provider, path, ok := strings.Cut(ref, ":")
	if !ok || path == "" {
		return usageErr(fmt.Errorf("get: want PROVIDER:PATH, like passwork:prod/db/postgres or passwork:id:65a1…, got %q", ref))
	}
	opt, err := s.fetchOptions(nil)
	if err != nil {
		return err
	}
	r, ok := newProviders(&s.Providers, opt, nil)[provider]
	if !ok {
		return usageErr(fmt.Errorf("get: unknown provider %q (have %v)", provider, template.Providers))
	}
	want := fetch.Ref{Provider: provider, Path: path, Field: field}
	res, err := r.Resolve(ctx, []fetch.Ref{want})
	if err != nil {
		return failureErr(err)
	}
	if res[0].Err != nil {
		return failureErr(fmt.Errorf("%s: %w", want, res[0].Err))
	}
	io.WriteString(stdout, res[0].Value)
	if !noNewline {
		io.WriteString(stdout, "\n")
	}
	return nil
}
