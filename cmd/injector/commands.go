package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/injector-dev/injector/internal/buildinfo"
	"github.com/injector-dev/injector/internal/cache"
	"github.com/injector-dev/injector/internal/fetch"
	"github.com/injector-dev/injector/internal/logging"
	"github.com/injector-dev/injector/internal/metrics"
	"github.com/injector-dev/injector/internal/pipeline"
	"github.com/injector-dev/injector/internal/render"
	"github.com/injector-dev/injector/internal/template"
)

// templateOptions are the flags that name templates.
type templateOptions struct {
	templates, envFiles, envs listFlag
	owner, delims             string
	// --env-from and how its entries are named (run, check); bulk is
	// set when the command takes them.
	envFrom, envAllow    listFlag
	envPrefix, envNaming string
	envOverride          optBool // default: INJECTOR_ENV_OVERRIDE
	bulk                 bool
	noEnvTemplates       optBool // default: INJECTOR_NO_ENV_TEMPLATES

	// Set by the command, not by flags: where -t SRC:- prints (nil: it
	// is refused), and whether nothing is written (check).
	stdout  io.Writer
	noWrite bool
}

// templateUse is which command the template flags are for: their help
// says what each does there, and check has no --owner (it writes nothing).
type templateUse int

const (
	forRun templateUse = iota
	forRender
	forCheck
)

// register adds the template flags for the command use.
func (o *templateOptions) register(f *flagSet, use templateUse) {
	f.group("Templates")
	switch use {
	case forRun:
		f.listVar(&o.envs, "env", "KEY=TEMPLATE", "set KEY in CMD's environment to the rendered TEMPLATE (repeatable)")
		f.listVar(&o.envFiles, "env-file", "FILE", "KEY=TEMPLATE lines for CMD's environment; dotenv quoting (repeatable)").complete = "file"
	case forCheck:
		f.listVar(&o.envs, "env", "KEY=TEMPLATE", "an environment template, as run --env takes it (repeatable)")
		f.listVar(&o.envFiles, "env-file", "FILE", "KEY=TEMPLATE lines, as run --env-file takes them (repeatable)").complete = "file"
	}
	if use != forRender {
		o.bulk = true
		f.group("Bulk environment")
		f.listVar(&o.envFrom, "env-from", "PROVIDER:SELECTION", "every entry of a folder (prod/app; prod/app/** with its subfolders), vault (prod, prod/**) or tag (tag:db) as variables: the password as NAME, custom fields as NAME_FIELD (repeatable; default $INJECTOR_ENV_FROM, ;-separated)")
		f.stringVar(&o.envPrefix, "env-prefix", "PREFIX", "", "put PREFIX before every --env-from name (default $INJECTOR_ENV_PREFIX)")
		f.stringVar(&o.envNaming, "env-naming", "RULE", "", "how --env-from names variables: injector (DB_PASSWORD) or passwork-cli (its exec rule: case kept, P_ before a non-letter, custom fields by their own name) (default $INJECTOR_ENV_NAMING, else injector)").choices = pipeline.Namings
		f.add(&o.envOverride, flagDoc{long: "env-override", usage: "let --env, --env-file and inherited templates replace an --env-from variable of the same name, instead of an error (default $INJECTOR_ENV_OVERRIDE)"})
		f.listVar(&o.envAllow, "env-allow", "NAME", "let --env-from set NAME although it changes how CMD runs (PATH, LD_*, NODE_OPTIONS…) (repeatable; default $INJECTOR_ENV_ALLOW, comma-separated)")
	}
	if use == forCheck {
		f.listVar(&o.templates, "template", "SRC:DST[:MODE]", "the file template SRC, as render takes it; nothing is written to DST (repeatable)").complete = "file"
	} else {
		f.listVar(&o.templates, "template", "SRC:DST[:MODE]", "render the file template SRC to DST (repeatable); MODE is octal, default 0600").complete = "file"
		f.stringVar(&o.owner, "owner", "UID[:GID]", "", "chown rendered files to this numeric owner, e.g. the app's user when injector runs as root")
	}
	f.shorthand("template", "t")
	f.stringVar(&o.delims, "delims", `"L R"`, "", `left and right template delimiters (default $INJECTOR_DELIMS, else "<< >>")`)
	if use != forRender {
		f.add(&o.noEnvTemplates, flagDoc{long: "no-env-templates", usage: "pass every inherited variable on unchanged, even one that calls a provider (default $INJECTOR_NO_ENV_TEMPLATES)"})
	}
}

// logOptions are the logging flags of the commands that log.
type logOptions struct{ level, format string }

func (l *logOptions) register(f *flagSet) {
	f.group("Logging")
	f.stringVar(&l.level, "log-level", "LEVEL", "", "debug, info, warn or error (default $INJECTOR_LOG_LEVEL, else info)").choices = []string{"debug", "info", "warn", "error"}
	f.stringVar(&l.format, "log-format", "FORMAT", "", "json or console (default $INJECTOR_LOG_FORMAT, else console on a terminal and json otherwise)").choices = []string{"json", "console"}
}

// logger builds the logger; flags override the INJECTOR_LOG_* settings.
func (l *logOptions) logger(s *settings, stderr io.Writer) (zerolog.Logger, error) {
	log, err := logging.New(cmp.Or(l.level, s.Log.Level), cmp.Or(l.format, s.Log.Format), stderr)
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
func buildPipeline(s *settings, o *templateOptions, opt fetch.Options, inheritEnv bool) (*pipeline.Pipeline, error) {
	p, problems, err := parsePipeline(s, o, opt, inheritEnv)
	if err != nil {
		return nil, err
	}
	if len(problems) > 0 {
		return nil, problems
	}
	return p, nil
}

// parsePipeline is buildPipeline that keeps going: it returns the pipeline
// of every template that parsed, and the problems of those that did not.
func parsePipeline(s *settings, o *templateOptions, opt fetch.Options, inheritEnv bool) (*pipeline.Pipeline, template.Errors, error) {
	delims, err := parseDelims(cmp.Or(o.delims, s.Delims))
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
		NoEnvTemplates: o.noEnvTemplates.or(s.NoEnvTemplates), Stdout: o.stdout, NoWrite: o.noWrite,
	}
	if o.bulk {
		// A flag replaces its setting; a list flag replaces the whole list.
		cfg.EnvFrom, cfg.EnvAllow = orList(o.envFrom, s.EnvFrom), orList(o.envAllow, s.EnvAllow)
		cfg.EnvPrefix, cfg.EnvNaming = cmp.Or(o.envPrefix, s.EnvPrefix), cmp.Or(o.envNaming, s.EnvNaming)
		cfg.EnvOverride = o.envOverride.or(s.EnvOverride)
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

// orList is the list flag's values when it was given, else the setting's.
func orList(flag listFlag, setting []string) []string {
	if len(flag) > 0 {
		return flag
	}
	return setting
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

// worker is what render and run start with: settings, the logger, metrics
// and the fetch options (retries logged, the ciphertext cache hooked in).
type worker struct {
	settings *settings
	log      zerolog.Logger
	metrics  *metrics.Metrics // nil unless served (--listen)
	opt      fetch.Options
	cache    *cache.Dir
}

// startWorker starts what render and run share. Metrics are kept only when
// listen (--listen) will serve them: nobody could read them otherwise, and
// building the registry with its Go and process collectors is a
// noticeable part of a cold start (docs/performance.md). A nil
// *metrics.Metrics records nothing.
func startWorker(l *logOptions, c *cacheOptions, listen string, stderr io.Writer) (*worker, error) {
	s, err := loadSettings()
	if err != nil {
		return nil, err
	}
	log, err := l.logger(s, stderr)
	if err != nil {
		return nil, err
	}
	var m *metrics.Metrics
	if listen != "" {
		m = metrics.New(buildinfo.Get().Version)
	}
	opt, err := s.fetchOptions(m.Observer())
	if err != nil {
		return nil, err
	}
	opt.OnRetry = logRetries(log)
	cd, err := c.open(s, &opt, log)
	if err != nil {
		return nil, err
	}
	return &worker{settings: s, log: log, metrics: m, opt: opt, cache: cd}, nil
}

// refresher renders p with the worker's cache, metrics and logger.
func (w *worker) refresher(p *pipeline.Pipeline) *refresher {
	return &refresher{p: p, cache: w.cache, m: w.metrics, log: w.log}
}

func renderCommand() *command {
	var (
		o templateOptions
		d daemonOptions
		c cacheOptions
		l logOptions
	)
	return &command{
		name: "render", summary: "render file templates, once or every --interval",
		extraHint: "templates are given as -t SRC:DST (to run a command, use injector run -- CMD)",
		about: `Every reference is resolved before anything is written; then each file whose
content changed is replaced atomically. On any error nothing is written and
the previous files stay. With --interval, render keeps running (a sidecar):
a failed refresh keeps the last good files and is retried with backoff.`,
		examples: []example{
			{"Kubernetes init container: render once, mode 0600", "injector render -t /templates/app.env.tpl:/secrets/app.env"},
			{"Sidecar: re-render every 5 minutes; serve /metrics, /healthz and /readyz", "injector render --interval 5m --listen :8099 -t /templates/app.env.tpl:/secrets/app.env"},
		},
		flags: func(f *flagSet) { o.register(f, forRender); d.register(f, false); c.register(f); l.register(f) },
		run: func(ctx context.Context, _ []string, stdout, stderr io.Writer) error {
			return cmdRender(ctx, &o, &d, &c, &l, stdout, stderr)
		},
	}
}

// cmdRender renders the -t templates: once (init container), or every
// --interval (sidecar).
func cmdRender(ctx context.Context, o *templateOptions, d *daemonOptions, c *cacheOptions, l *logOptions, stdout, stderr io.Writer) error {
	if len(o.templates) == 0 {
		return usageErr(errors.New("render: no templates; give -t SRC:DST[:MODE] (to run a command with secrets in its environment, use injector run)"))
	}
	if d.listen != "" && (d.interval == 0 || d.once) {
		return usageErr(errors.New("render: --listen serves metrics and probes while injector keeps running, but without --interval (or with --once) render exits as soon as the files are written; add --interval, or drop --listen"))
	}
	w, err := startWorker(l, c, d.listen, stderr)
	if err != nil {
		return err
	}
	s, log, m, opt := w.settings, w.log, w.metrics, w.opt
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
	if cfg.Once && d.waitForSecrets == 0 {
		// The plain init-container case: no loop, errors straight to stderr.
		r := w.refresher(p)
		changes, err := r.Refresh(ctx)
		logout(ctx, p, log)
		if err != nil {
			return err
		}
		log.Info().Int("templates", len(p.Files())).Int("references", r.last.Refs).Strs("changed", changes.Files).Msg("rendered")
		return nil
	}
	defer logout(ctx, p, log)
	return runDaemon(ctx, cfg, w.refresher(p), m, log)
}

func runCommand() *command {
	var (
		o templateOptions
		d daemonOptions
		c cacheOptions
		l logOptions
	)
	return &command{
		name: "run", summary: "render templates, then run CMD with the secrets in its environment",
		args: "[--] CMD [ARGS...]", minArgs: 1, maxArgs: -1, passthrough: true,
		about: `Flags come before CMD: everything from CMD on is CMD's own command line.
CMD gets the rendered --env and --env-file variables and the inherited
environment, without injector's own settings (PASSWORK_*, PASSBOLT_*,
PASSAGENT_*, INJECTOR_*). Without --interval, run replaces itself with CMD
(exec), so signals and the exit code are CMD's own; as PID 1, or with
--mask or --listen, it supervises CMD instead and passes its exit code on.`,
		examples: []example{
			{"Wrap an application: the secret is in its environment, nowhere on disk", `injector run --env 'DB_PASSWORD=<< passwork "prod/db/postgres" >>' -- ./server --port 8080`},
			{"Supervise it: refresh every minute, restart it when its environment changes", "injector run --interval 1m --env-file app.env -- ./server --port 8080"},
			{"Every entry of a Passwork folder as a variable (DB_PASSWORD, API_KEY…)", "injector run --env-from passwork:prod/app -- ./server --port 8080"},
		},
		flags: func(f *flagSet) { o.register(f, forRun); d.register(f, true); c.register(f); l.register(f) },
		run: func(ctx context.Context, argv []string, stdout, stderr io.Writer) error {
			return cmdRun(ctx, argv, &o, &d, &c, &l, stdout, stderr)
		},
	}
}

// cmdRun renders templates, then runs the command with the secrets in its
// environment: by exec(2) when injector has nothing left to do, as a
// supervised child otherwise (daemon mode, PID 1, --mask).
func cmdRun(ctx context.Context, argv []string, o *templateOptions, d *daemonOptions, c *cacheOptions, l *logOptions, stdout, stderr io.Writer) error {
	path, err := exec.LookPath(argv[0])
	if err != nil {
		return &exitError{code: execErrorCode(err), err: fmt.Errorf("run: %w", err)}
	}
	w, err := startWorker(l, c, d.listen, stderr)
	if err != nil {
		return err
	}
	s, log, m, opt := w.settings, w.log, w.metrics, w.opt
	p, err := buildPipeline(s, o, opt, true)
	if err != nil {
		return err
	}
	found := append([]string{path}, argv[1:]...) // the command as found on PATH
	cfg, err := d.daemonConfig(p, found)
	if err != nil {
		return usageErr(err)
	}
	if err := startMetrics(ctx, m, d.listen, log); err != nil {
		return err
	}
	r := w.refresher(p)
	if d.interval > 0 {
		defer logout(ctx, p, log)
		return runDaemon(ctx, cfg, r, m, log)
	}

	// One-shot: render (waiting for secrets if asked to), end the server
	// sessions that took, then hand over.
	if d.waitForSecrets > 0 || d.listen != "" {
		// Through the daemon's first refresh: it waits for secrets and
		// records the render in /metrics and /readyz.
		err = runDaemon(ctx, cfg, r, m, log)
	} else {
		_, err = r.Refresh(ctx)
	}
	logout(ctx, p, log)
	if err != nil {
		return err
	}
	res := r.last
	log.Info().Int("templates", len(p.Files())).Int("env", len(p.EnvKeys())+len(res.BulkKeys)).Int("references", res.Refs).Str("command", argv[0]).Msg("starting command")
	if os.Getpid() == 1 || d.mask || d.listen != "" {
		return superviseOnce(ctx, found, res.Env, res.Secrets, d, stdout, stderr)
	}
	// A SIGINT/SIGTERM while rendering must not be followed by the exec:
	// the command would never hear of it.
	if ctx.Err() != nil {
		return fmt.Errorf("run: %v before the command started", context.Cause(ctx))
	}
	// exec keeps the PID, so the command receives signals sent to injector
	// directly and its exit code is the container's.
	if err := syscall.Exec(path, argv, res.Env); err != nil {
		return &exitError{code: execErrorCode(err), err: fmt.Errorf("run: exec %s: %w", argv[0], err)}
	}
	return nil
}

// logoutTimeout bounds ending the server sessions: a server that went
// away mid-run must not hold up the command.
const logoutTimeout = 5 * time.Second

// logout ends the server sessions p's providers opened (a Passbolt login,
// a Passwork v4 session): a one-shot run once it has its secrets, a daemon
// when it stops, so no run leaves a live session behind. A failure is a
// warning; it never changes the outcome.
func logout(ctx context.Context, p *pipeline.Pipeline, log zerolog.Logger) {
	endSessions(ctx, p.Logout, func(err error) {
		log.Warn().Err(err).Msg("could not end the server session; it expires by itself")
	})
}

// endSessions calls end (a Logout) within logoutTimeout, even after ctx
// is cancelled, and tells warn about a failure.
func endSessions(ctx context.Context, end func(context.Context) error, warn func(error)) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), logoutTimeout)
	defer cancel()
	if err := end(ctx); err != nil {
		warn(err)
	}
}

// warnTo prints a warning the way check and get print theirs.
func warnTo(w io.Writer) func(error) {
	return func(err error) {
		fmt.Fprintf(w, "injector: warning: could not end the server session (it expires by itself): %v\n", err)
	}
}

// execErrorCode is the exit code for a command that could not be started,
// as env(1) and shells report it: 127 when it does not exist, 126 when it
// exists but cannot be executed.
func execErrorCode(err error) int {
	if errors.Is(err, exec.ErrNotFound) || errors.Is(err, fs.ErrNotExist) {
		return exitNotFound
	}
	return exitCannotExecute
}

func checkCommand() *command {
	var o templateOptions
	return &command{
		name: "check", summary: "resolve every reference and list every problem; prints no value",
		extraHint: "templates are given as -t SRC:DST, --env-file FILE or --env KEY=TEMPLATE",
		about: `check parses every template, resolves every reference and reports every
problem at once, with file:line:col, the reference and what exists nearby.
It writes nothing (the DST of -t is not used) and never prints a value.
Inherited variables that are templates are checked too, as run renders them.`,
		examples: []example{
			{"Does every reference in these templates resolve?", "injector check -t app.env.tpl:/dev/null -t config.json.tpl:/dev/null"},
			{"An env file and one more variable", `injector check --env-file app.env --env 'API_KEY=<< passagent "Stripe" >>'`},
		},
		flags: func(f *flagSet) { o.register(f, forCheck) },
		run: func(ctx context.Context, _ []string, stdout, stderr io.Writer) error {
			return cmdCheck(ctx, &o, stdout, stderr)
		},
	}
}

// cmdCheck resolves every reference without printing any value. It
// reports every problem at once: templates that do not parse, and every
// reference that does not resolve in those that do.
func cmdCheck(ctx context.Context, o *templateOptions, stdout, stderr io.Writer) error {
	s, err := loadSettings()
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
	if len(problems) == 0 && len(p.Templates()) == 0 && len(orList(o.envFrom, s.EnvFrom)) == 0 {
		return usageErr(errors.New("check: nothing to check; give -t SRC:DST, --env-file FILE, --env KEY=TEMPLATE or --env-from PROVIDER:SELECTION"))
	}
	out, bulkKeys, err := p.Check(ctx)
	endSessions(ctx, p.Logout, warnTo(stderr))
	if err != nil {
		problems = append(problems, err)
	}
	if len(problems) > 0 {
		return fmt.Errorf("check failed:\n%w", problems)
	}
	// References in branches this render does not take: not errors, but
	// they will be once the branch is taken.
	for _, w := range out.Warnings {
		fmt.Fprintln(stderr, "injector: warning:", w)
	}
	if len(bulkKeys) > 0 {
		// Names only: which variables run would set, never their values.
		fmt.Fprintf(stdout, "ok: %s, %s resolved, --env-from sets %s\n", plural(len(p.Templates()), "template"), plural(out.Refs, "reference"), strings.Join(bulkKeys, " "))
		return nil
	}
	fmt.Fprintf(stdout, "ok: %s, %s resolved\n", plural(len(p.Templates()), "template"), plural(out.Refs, "reference"))
	return nil
}

// plural is "1 template", "2 templates", "2 entries".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	if stem, ok := strings.CutSuffix(noun, "y"); ok {
		return fmt.Sprintf("%d %sies", n, stem)
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

func getCommand() *command {
	var (
		field     string
		noNewline bool
	)
	return &command{
		name: "get", summary: "print one secret, for scripts",
		args: "PROVIDER:PATH", minArgs: 1, maxArgs: 1,
		about: `PROVIDER is passwork, passbolt or passagent; PATH is what a template names,
like prod/db/postgres or id:65a1…. Only the value is printed, on stdout.`,
		examples: []example{
			{"The password (the default field)", "injector get passwork:prod/db/postgres"},
			{"Another field, without the trailing newline", "injector get passbolt:infra/ci/deploy-key --field username -n"},
		},
		flags: func(f *flagSet) {
			f.stringVar(&field, "field", "F", "password", "the field to print: password, login or username, url, totp, a custom field's name…")
			f.boolVar(&noNewline, "no-newline", false, "do not print a trailing newline")
			f.shorthand("no-newline", "n")
		},
		run: func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
			return cmdGet(ctx, args[0], field, noNewline, stdout, stderr)
		},
	}
}

// cmdGet prints one secret, for scripts.
func cmdGet(ctx context.Context, ref, field string, noNewline bool, stdout, stderr io.Writer) error {
	provider, path, ok := strings.Cut(ref, ":")
	if !ok || path == "" {
		return usageErr(fmt.Errorf("get: want PROVIDER:PATH, like passwork:prod/db/postgres or passwork:id:65a1…, got %q", ref))
	}
	if field == "" {
		return usageErr(errors.New("get: --field is empty"))
	}
	s, err := loadSettings()
	if err != nil {
		return err
	}
	opt, err := s.fetchOptions(nil)
	if err != nil {
		return err
	}
	providers := pipeline.Providers(&s.Providers, opt, nil)
	r, ok := providers[provider]
	if !ok {
		return usageErr(fmt.Errorf("get: unknown provider %q (have %s)", provider, strings.Join(template.Providers, ", ")))
	}
	want := fetch.Ref{Provider: provider, Path: path, Field: field}
	res, err := r.Resolve(ctx, []fetch.Ref{want})
	endSessions(ctx, func(ctx context.Context) error { return pipeline.Logout(ctx, providers) }, warnTo(stderr))
	if err != nil {
		return err
	}
	if err := res[0].Err; err != nil {
		if !strings.Contains(err.Error(), want.String()) {
			err = fmt.Errorf("%s: %w", want, err)
		}
		return err
	}
	io.WriteString(stdout, res[0].Value)
	if !noNewline {
		io.WriteString(stdout, "\n")
	}
	return nil
}

func versionCommand() *command {
	return &command{
		name: "version", summary: "print the version, commit, build date, Go version and platform",
		examples: []example{{"", "injector version"}, {"The same", "injector --version"}},
		run: func(_ context.Context, _ []string, stdout, _ io.Writer) error {
			buildinfo.Get().Print(stdout, "injector")
			return nil
		},
	}
}

func helpCommand() *command {
	return &command{
		name: "help", summary: "show the commands, or one command's help",
		args: "[COMMAND]", maxArgs: 1,
		examples: []example{{"", "injector help"}, {"", "injector help render"}},
		run: func(_ context.Context, args []string, stdout, _ io.Writer) error {
			if len(args) == 0 {
				mainHelp(stdout, commands())
				return nil
			}
			c := lookup(args[0])
			if c == nil {
				return usageErr(fmt.Errorf("help: unknown command %q; run 'injector --help' for the list", args[0]))
			}
			c.help(stdout)
			return nil
		},
	}
}
