package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"

	"github.com/rs/zerolog"

	"github.com/injector-dev/injector/internal/fetch"
	"github.com/injector-dev/injector/internal/logging"
	"github.com/injector-dev/injector/internal/metrics"
	"github.com/injector-dev/injector/internal/pipeline"
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
	noEnvTemplates              bool

	// Set by the command, not by flags: where -t SRC:- prints (nil: it
	// is refused), and whether nothing is written (check).
	stdout  io.Writer
	noWrite bool
}

// newFlagSet returns a flag set with the shared flags, defaulting to the
// INJECTOR_* settings.
func newFlagSet(name string, s *settings, o *options, stderr io.Writer, withTemplates bool) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.logLevel, "log-level", s.Log.Level, "debug, info, warn or error (INJECTOR_LOG_LEVEL)")
	fs.StringVar(&o.logFormat, "log-format", s.Log.Format, "json or console; default console on a terminal, else json (INJECTOR_LOG_FORMAT)")
	fs.StringVar(&o.delims, "delims", s.Delims, "left and right template delimiters, space-separated (INJECTOR_DELIMS)")
	if withTemplates {
		fs.Var(&o.templates, "t", "file template `SRC:DST[:MODE]` (repeatable; MODE octal, default 0600)")
		fs.Var(&o.templates, "template", "same as -t")
		fs.Var(&o.envFiles, "env-file", "file of KEY=TEMPLATE lines (repeatable)")
		fs.Var(&o.envs, "env", "KEY=TEMPLATE environment variable for the command (repeatable)")
		fs.StringVar(&o.owner, "owner", "", "chown rendered files to numeric `UID[:GID]` (e.g. the app's user when injector runs as root)")
		fs.BoolVar(&o.noEnvTemplates, "no-env-templates", s.NoEnvTemplates, "pass every inherited variable on unchanged, even one that calls a provider (INJECTOR_NO_ENV_TEMPLATES)")
	}
	return fs
}

func newLogger(o *options, stderr io.Writer) (zerolog.Logger, error) {
	log, err := logging.New(o.logLevel, o.logFormat, stderr)
	if err != nil {
		return log, usageErr(err)
	}
	return log, nil
}

func parseDelims(s string) ([2]string, error) {
	f := strings.Fields(s)
	if len(f) != 2 {
		return [2]string{}, usageErr(fmt.Errorf("--delims %q: want two delimiters separated by a space, like \"<< >>\"", s))
	}
	return [2]string{f[0], f[1]}, nil
}

// buildPipeline parses every template the flags name. Parse errors are all
// collected, so one run shows every broken template.
func buildPipeline(s *settings, o *options, opt fetch.Options, inheritEnv bool) (*pipeline.Pipeline, error) {
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
func parsePipeline(s *settings, o *options, opt fetch.Options, inheritEnv bool) (*pipeline.Pipeline, template.Errors, error) {
	delims, err := parseDelims(o.delims)
	if err != nil {
		return nil, nil, err
	}
	var reload pipeline.Reload
	if s.fromEnv {
		reload = reloadProviders
	}
	cfg := pipeline.Config{
		Templates: o.templates, EnvFiles: o.envFiles, Env: o.envs, Delims: delims,
		Providers:      pipeline.Providers(&s.Providers, opt, reload),
		NoEnvTemplates: o.noEnvTemplates, Stdout: o.stdout, NoWrite: o.noWrite,
	}
	if o.owner != "" {
		if cfg.Owner, err = parseOwner(o.owner); err != nil {
			return nil, nil, usageErr(err)
		}
	}
	if inheritEnv {
		cfg.Environ = os.Environ()
	}
	p, problems := pipeline.New(cfg)
	return p, problems, nil
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
	if d.interval == 0 || d.once {
		o.stdout = stdout // -t SRC:- prints: rendering once is asking for the text
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
		log.Info().Int("templates", len(p.Files())).Int("references", res.Refs).Strs("changed", res.Changed).Msg("rendered")
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
	var res pipeline.Outcome
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
	log.Info().Int("templates", len(p.Files())).Int("env", len(p.EnvKeys())).Int("references", res.Refs).Str("command", argv[0]).Msg("starting command")
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
	o.noWrite = true
	opt, err := s.fetchOptions(nil)
	if err != nil {
		return err
	}
	p, problems, err := parsePipeline(s, o, opt, true)
	if err != nil {
		return err
	}
	parseFailed := len(problems) > 0
	out, err := p.Render(ctx)
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
	fmt.Fprintf(stdout, "ok: %d templates, %d references resolved\n", len(p.Templates()), out.Refs)
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
	r, ok := pipeline.Providers(&s.Providers, opt, nil)[provider]
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
