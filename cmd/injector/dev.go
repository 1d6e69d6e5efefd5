package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"os/signal"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/injector-dev/injector/examples"
	"github.com/injector-dev/injector/internal/fetch"
	"github.com/injector-dev/injector/internal/fetch/fetchtest"
	"github.com/injector-dev/injector/internal/fetch/passagent/passagenttest"
	"github.com/injector-dev/injector/internal/fetch/passbolt/passbolttest"
	"github.com/injector-dev/injector/internal/fetch/passwork/passworktest"
	"github.com/injector-dev/injector/internal/pipeline"
	"github.com/injector-dev/injector/internal/render"
	"github.com/injector-dev/injector/internal/template"
)

// emulator is what dev needs of each provider's test server.
type emulator interface {
	Seed([]fetchtest.Entry) error
	Requests() int
	Close()
}

// devEmulator is one running emulator with what dev shows about it.
type devEmulator struct {
	name, url, about string
	entries          int
	emu              emulator
	// env is the settings that point injector at it; files holds values
	// too long for one line (keys), exported as NAME_FILE.
	env map[string]string
	// serveNote is shown with --serve: other ways in (another API).
	serveNote string
}

func devCommand() *command {
	var o devOptions
	return &command{
		name: "dev", summary: "try it: embedded emulators seeded from examples/, no server needed",
		about: `dev starts an emulator of Passwork, Passbolt and PassAgent on loopback, seeds
them from examples/dev/seed.json (encrypting the entries as the official
clients do), renders examples/templates against them and shows the result
with every secret value shown as REDACTED. The rendered files live in a
temporary directory that dev removes when it exits (--out DIR keeps them).

With --serve the emulators keep running and dev prints a settings file for
other shells. --listen HOST serves them where containers or other machines
reach them, over HTTPS with a certificate from a CA made at start; the
settings name the CA file as INJECTOR_CA_FILE.`,
		examples: []example{
			{"Render the examples against the emulators", "injector dev"},
			{"Keep the emulators running and print the settings to use them from another shell", "injector dev --serve"},
			{"Serve them on this machine's address, over HTTPS, for containers (a free port each)", "injector dev --serve --listen 192.0.2.10"},
		},
		flags: func(f *flagSet) {
			f.boolVar(&o.serve, "serve", false, "keep the emulators running until Ctrl-C and print the settings and commands to use them")
			f.stringVar(&o.listen, "listen", "HOST[:PORT]", "", "with --serve: listen on HOST, this machine's address or name as clients reach it (default 127.0.0.1); PORT and the next two, or a free port each")
			f.add(&o.tls, flagDoc{long: "tls", usage: "with --serve: HTTPS with a certificate from a CA made at start (default: on unless HOST is loopback)"})
			f.boolVar(&o.show, "show-secrets", false, "print secret values instead of REDACTED")
			f.stringVar(&o.out, "out", "DIR", "", "render into DIR and keep the files (default: a temporary directory, removed on exit)").complete = "dir"
			f.stringVar(&o.examples, "examples", "DIR", "", "directory with dev/seed.json and templates/*.tpl (default: the copy built into injector)").complete = "dir"
		},
		run: func(ctx context.Context, _ []string, stdout, stderr io.Writer) error {
			return cmdDev(ctx, &o, stdout)
		},
	}
}

type devOptions struct {
	serve, show   bool
	out, examples string
	listen        string
	tls           optBool
}

// cmdDev starts every provider's emulator (on loopback, or where --listen
// says), seeds it from examples/dev/seed.json, renders examples/templates
// and shows the result with secret values masked. With --serve it keeps the emulators running
// and prints the settings to use them from another shell. Everything it
// creates in its temporary directory is removed when it returns, however
// it returns.
func cmdDev(ctx context.Context, o *devOptions, stdout io.Writer) error {
	// A closed terminal (SIGHUP) stops dev --serve as Ctrl-C does, so the
	// work directory is removed then too.
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGHUP)
	defer stop()
	if !o.serve && (o.listen != "" || o.tls.set) {
		return usageErr(errNoServe)
	}
	listen, err := parseDevListen(o.listen, o.tls)
	if err != nil {
		return usageErr(fmt.Errorf("dev: %w", err))
	}
	var examplesFS fs.FS = examples.FS
	if o.examples != "" {
		examplesFS = os.DirFS(o.examples)
	}
	seedFile, err := examplesFS.Open("dev/seed.json")
	if err != nil {
		return usageErr(fmt.Errorf("dev: %w", err))
	}
	seed, err := fetchtest.ParseSeed(seedFile)
	seedFile.Close()
	if err != nil {
		return usageErr(fmt.Errorf("dev: dev/seed.json: %w", err))
	}
	names, _ := fs.Glob(examplesFS, "templates/*.tpl")
	sort.Strings(names)
	if len(names) == 0 {
		return usageErr(errors.New("dev: no templates/*.tpl in the examples"))
	}

	work, err := os.MkdirTemp("", "injector-dev-")
	if err != nil {
		return fmt.Errorf("dev: %w", err)
	}
	defer os.RemoveAll(work)
	out := filepath.Join(work, "out")
	if o.out != "" {
		if out, err = filepath.Abs(o.out); err != nil {
			return usageErr(fmt.Errorf("dev: --out: %w", err))
		}
	}

	network, err := listen.open()
	if err != nil {
		return usageErr(fmt.Errorf("dev: %w", err))
	}
	defer network.close()
	emus, cfg, err := startEmulators(seed, network)
	defer func() {
		for _, e := range emus {
			e.emu.Close()
		}
	}()
	if err != nil {
		return fmt.Errorf("dev: %w", err)
	}
	caFile := ""
	if network.ca != nil {
		caFile = filepath.Join(work, "ca.pem")
		if err := os.WriteFile(caFile, network.ca.PEM, 0o644); err != nil {
			return fmt.Errorf("dev: %w", err)
		}
	}

	where := "on loopback"
	if network.host != "" {
		where = "on " + network.host
	}
	fmt.Fprintf(stdout, "injector dev: embedded emulators %s, seeded from examples/dev/seed.json\n", where)
	for _, e := range emus {
		fmt.Fprintf(stdout, "  %-9s %s  %s, %s\n", e.name, e.url, e.about, plural(e.entries, "entry"))
	}
	if caFile != "" {
		fmt.Fprintf(stdout, "  HTTPS: certificates from a CA made for this run, %s (INJECTOR_CA_FILE in the settings)\n", caFile)
	}

	// Render every example template. Copies of the templates go to the
	// work directory, so the commands --serve prints work from anywhere.
	var files []pipeline.File
	for _, name := range names {
		text, err := fs.ReadFile(examplesFS, name)
		if err != nil {
			return fmt.Errorf("dev: %w", err)
		}
		copyPath := filepath.Join(work, name)
		if err := os.MkdirAll(filepath.Dir(copyPath), 0o700); err != nil {
			return fmt.Errorf("dev: %w", err)
		}
		if err := os.WriteFile(copyPath, text, 0o600); err != nil {
			return fmt.Errorf("dev: %w", err)
		}
		tpl, err := template.Parse(template.Source{Name: "examples/" + name}, string(text), template.DefaultDelims)
		if err != nil {
			return err
		}
		dst := filepath.Join(out, strings.TrimSuffix(path.Base(name), ".tpl"))
		files = append(files, pipeline.File{Src: name, Dst: dst, Mode: render.DefaultMode, Template: tpl})
	}
	// Every template is parsed already: New has no problems to report.
	p, _ := pipeline.New(pipeline.Config{Files: files, Providers: pipeline.Providers(cfg, fetch.Options{Client: network.client()}, nil)})
	start := time.Now()
	res, err := p.Refresh(ctx)
	if err != nil {
		return err
	}
	took := time.Since(start)

	// For display, render again with every secret replaced by a marker, so
	// values transformed by template functions (urlquery, b64enc) are
	// hidden too. No request is made: the marker resolver answers locally.
	shown := res.Outputs
	if !o.show {
		marker := template.ResolverFunc(func(_ context.Context, refs []fetch.Ref) ([]fetch.Result, error) {
			out := make([]fetch.Result, len(refs))
			for i := range out {
				out[i].Value = "REDACTED"
			}
			return out, nil
		})
		masked, err := (&template.Engine{Providers: map[string]template.Resolver{
			"passwork": marker, "passbolt": marker, "passagent": marker,
		}}).Render(ctx, p.Templates())
		if err != nil {
			return err
		}
		shown = masked.Outputs
	}
	switch {
	case o.out != "":
		fmt.Fprintf(stdout, "\nRendered %s into %s:\n", plural(len(p.Files()), "template"), out)
	case o.serve:
		fmt.Fprintf(stdout, "\nRendered %s into %s (removed when dev stops):\n", plural(len(p.Files()), "template"), out)
	default:
		fmt.Fprintf(stdout, "\nRendered %s (into a temporary directory, removed when dev exits; --out DIR keeps the files):\n", plural(len(p.Files()), "template"))
	}
	for i, f := range p.Files() {
		fmt.Fprintf(stdout, "\n--- %s -> %s (mode %04o)\n%s", f.Src, filepath.Base(f.Dst), f.Mode, shown[i])
		if !bytes.HasSuffix(shown[i], []byte("\n")) {
			fmt.Fprintln(stdout)
		}
	}
	var counts []string
	total := 0
	for _, e := range emus {
		counts = append(counts, fmt.Sprintf("%s %d", e.name, e.emu.Requests()))
		total += e.emu.Requests()
	}
	fmt.Fprintf(stdout, "\n%s resolved with %s (%s) in %s, decrypted client-side.\n",
		plural(res.Refs, "reference"), plural(total, "HTTP request"), strings.Join(counts, ", "), took.Round(time.Millisecond))
	if !o.show {
		fmt.Fprintln(stdout, "Secret values are shown as REDACTED; --show-secrets prints them.")
	}

	if !o.serve {
		fmt.Fprintln(stdout, "Next: `injector dev --serve` keeps the emulators up so you can try `injector run`, `get` and `check` against them.")
		return nil
	}
	envFile := filepath.Join(work, "dev.env")
	if err := writeDevEnv(envFile, emus, caFile); err != nil {
		return fmt.Errorf("dev: %w", err)
	}
	fmt.Fprintf(stdout, "\nEmulators are running until Ctrl-C. In another shell (any directory):\n  set -a; . %s; set +a\n", shellQuote(envFile))
	if fn := selfFunction(); fn != "" {
		fmt.Fprintf(stdout, "  %s\n", fn)
	}
	fmt.Fprintf(stdout, `  injector get passwork:prod/db/postgres --field login
  injector check -t %s:/dev/null
  injector run --env 'DB_PASSWORD=<< passwork "prod/db/postgres" >>' -- sh -c 'echo "password has ${#DB_PASSWORD} characters"'
`, shellQuote(filepath.Join(work, "templates", "app.env.tpl")))
	for _, e := range emus {
		if e.serveNote != "" {
			fmt.Fprintf(stdout, "%s\n", e.serveNote)
		}
	}
	if network.host != "" && !fetch.LoopbackHost(network.host) {
		dir := filepath.Join(work, "credentials")
		if err := writeDevCredentials(dir, emus, network.ca); err != nil {
			return fmt.Errorf("dev: %w", err)
		}
		fmt.Fprintf(stdout, `Containers: the same settings as one file each in %s, readable by any
user (the directory around it is yours alone), to mount read-only; from this repository's root:
  INJECTOR_CREDENTIALS=%s docker-compose -f examples/docker-compose.yml up
`, dir, shellQuote(dir))
	}
	<-ctx.Done()
	return nil
}

// writeDevCredentials writes every setting of the emulators into dir, one
// file each named as the setting in lower case (passwork_url,
// passwork_token…), and the CA as ca.pem: what a container mounts
// read-only and names in NAME_FILE settings. The files are readable by
// any user, so that a container's user (65532 in injector's image) can
// read them; dir is inside dev's work directory, which only its owner
// can enter.
func writeDevCredentials(dir string, emus []*devEmulator, ca *fetchtest.CA) error {
	if err := os.Mkdir(dir, 0o755); err != nil {
		return err
	}
	if err := os.Chmod(dir, 0o755); err != nil { // whatever the umask
		return err
	}
	files := map[string][]byte{}
	if ca != nil {
		files["ca.pem"] = ca.PEM
	}
	for _, e := range emus {
		for k, v := range e.env {
			files[strings.ToLower(k)] = []byte(v)
		}
	}
	for name, data := range files {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, data, 0o444); err != nil {
			return err
		}
		if err := os.Chmod(path, 0o444); err != nil {
			return err
		}
	}
	return nil
}

// selfFunction is a shell function that makes `injector` this very binary
// in the user's other shell, so the commands dev prints work as printed;
// "" when `injector` on PATH is this binary already.
func selfFunction() string {
	exe, err := os.Executable()
	if err != nil {
		return ""
	}
	if onPath, err := exec.LookPath("injector"); err == nil && sameFile(onPath, exe) {
		return ""
	}
	return fmt.Sprintf(`injector() { %s "$@"; }   # this binary; go install ./cmd/injector puts one on PATH`, shellQuote(exe))
}

func sameFile(a, b string) bool {
	sa, err1 := os.Stat(a)
	sb, err2 := os.Stat(b)
	return err1 == nil && err2 == nil && os.SameFile(sa, sb)
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/._-+:@%=,") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// startEmulators starts and seeds one emulator per provider, where network
// says, and returns the settings that point injector at them.
func startEmulators(seed *fetchtest.Seed, network *devNetwork) ([]*devEmulator, *pipeline.ProviderConfig, error) {
	cfg := &pipeline.ProviderConfig{}
	var emus []*devEmulator

	pw := passworktest.NewServer(passworktest.WithListen(network.listen(0)))
	emus = append(emus, &devEmulator{name: "passwork", url: pw.URL, about: "Passwork 7 API and the legacy 4–6 API, client-side encryption on", emu: pw, entries: len(seed.Passwork)})
	if err := pw.Seed(seed.Passwork); err != nil {
		return emus, nil, fmt.Errorf("passwork seed: %w", err)
	}
	cfg.Passwork = pw.Config()
	// PASSWORK_HOST too, so passwork-cli works from the same settings.
	emus[len(emus)-1].env = map[string]string{
		"PASSWORK_URL": cfg.Passwork.URL, "PASSWORK_HOST": cfg.Passwork.URL, "PASSWORK_TOKEN": cfg.Passwork.Token,
		"PASSWORK_REFRESH_TOKEN": cfg.Passwork.RefreshToken, "PASSWORK_MASTER_KEY": cfg.Passwork.MasterKey,
	}
	v4 := pw.ConfigV4()
	emus[len(emus)-1].serveNote = fmt.Sprintf(`Passwork 4–6 users: the same entries are on the legacy API, with the same master key:
  PASSWORK_URL=%s PASSWORK_HOST= PASSWORK_API_KEY=%s injector get passwork:prod/db/postgres`, v4.URL, v4.APIKey)

	pb, err := passbolttest.New(network.listen(1))
	if err != nil {
		return emus, nil, fmt.Errorf("passbolt emulator: %w", err)
	}
	emus = append(emus, &devEmulator{name: "passbolt", url: pb.URL, about: "Passbolt 5 API, JWT login, v5 and v4 resources", emu: pb, entries: len(seed.Passbolt)})
	if err := pb.Seed(seed.Passbolt); err != nil {
		return emus, nil, fmt.Errorf("passbolt seed: %w", err)
	}
	cfg.Passbolt = pb.Config()
	emus[len(emus)-1].env = map[string]string{
		"PASSBOLT_URL": cfg.Passbolt.URL, "PASSBOLT_USER_ID": cfg.Passbolt.UserID,
		"PASSBOLT_PRIVATE_KEY": cfg.Passbolt.PrivateKey, "PASSBOLT_PASSPHRASE": cfg.Passbolt.Passphrase,
		"PASSBOLT_SERVER_FINGERPRINT": cfg.Passbolt.ServerFingerprint,
	}

	pa, err := passagenttest.New(passagenttest.Options{Listen: network.listen(2)})
	if err != nil {
		return emus, nil, fmt.Errorf("passagent emulator: %w", err)
	}
	emus = append(emus, &devEmulator{name: "passagent", url: pa.URL, about: "PassAgent V3 envelopes, Argon2id vault key", emu: pa, entries: len(seed.PassAgent)})
	if err := pa.Seed(seed.PassAgent); err != nil {
		return emus, nil, fmt.Errorf("passagent seed: %w", err)
	}
	cfg.PassAgent = pa.Config()
	emus[len(emus)-1].env = map[string]string{
		"PASSAGENT_URL": cfg.PassAgent.URL, "PASSAGENT_TOKEN": cfg.PassAgent.Token,
		"PASSAGENT_MASTER_PASSWORD": cfg.PassAgent.MasterPassword,
	}
	return emus, cfg, nil
}

// writeDevEnv writes a file of settings for the running emulators, ready
// for `set -a; . FILE`. Multi-line values (keys) go to files of their own
// and are referenced as NAME_FILE. caFile, if set, is the CA to trust.
func writeDevEnv(path string, emus []*devEmulator, caFile string) error {
	var b strings.Builder
	if caFile != "" {
		fmt.Fprintf(&b, "INJECTOR_CA_FILE='%s'\n", caFile)
	}
	dir := filepath.Dir(path)
	for _, e := range emus {
		keys := make([]string, 0, len(e.env))
		for k := range e.env {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			v := e.env[k]
			if strings.ContainsAny(v, "\n'") {
				f := filepath.Join(dir, strings.ToLower(k))
				if err := os.WriteFile(f, []byte(v), 0o600); err != nil {
					return err
				}
				k, v = k+"_FILE", f
			}
			fmt.Fprintf(&b, "%s='%s'\n", k, v)
		}
	}
	return os.WriteFile(path, []byte(b.String()), 0o600)
}
