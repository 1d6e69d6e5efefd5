package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/injector-dev/injector/examples"
	"github.com/injector-dev/injector/internal/fetch"
	"github.com/injector-dev/injector/internal/fetch/fetchtest"
	"github.com/injector-dev/injector/internal/fetch/passbolt/passbolttest"
	"github.com/injector-dev/injector/internal/fetch/passwork/passworktest"
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
}

// cmdDev starts every provider's emulator on loopback, seeds it from
// examples/dev/seed.json, renders examples/templates and shows the result
// with secret values masked. With --serve it keeps the emulators running
// and prints the settings to use them from another shell.
func cmdDev(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fset := flag.NewFlagSet("dev", flag.ContinueOnError)
	fset.SetOutput(stderr)
	serve := fset.Bool("serve", false, "keep the emulators running and print the settings to use them")
	show := fset.Bool("show-secrets", false, "print secret values instead of masking them")
	dir := fset.String("examples", "", "directory with dev/seed.json and templates/ (default: the copy built into injector)")
	if err := fset.Parse(args); err != nil {
		return &exitError{code: exitUsage}
	}
	var files fs.FS = examples.FS
	if *dir != "" {
		files = os.DirFS(*dir)
	}
	seedFile, err := files.Open("dev/seed.json")
	if err != nil {
		return &exitError{code: exitSetup, err: fmt.Errorf("dev: %w", err)}
	}
	seed, err := fetchtest.ParseSeed(seedFile)
	seedFile.Close()
	if err != nil {
		return &exitError{code: exitSetup, err: fmt.Errorf("dev: dev/seed.json: %w", err)}
	}

	work, err := os.MkdirTemp("", "injector-dev-")
	if err != nil {
		return &exitError{code: exitSetup, err: err}
	}
	emus, cfg, err := startEmulators(seed, work)
	defer func() {
		for _, e := range emus {
			e.emu.Close()
		}
	}()
	if err != nil {
		return &exitError{code: exitSetup, err: fmt.Errorf("dev: %w", err)}
	}

	fmt.Fprintln(stdout, "injector dev: embedded emulators on loopback, seeded from examples/dev/seed.json")
	for _, e := range emus {
		fmt.Fprintf(stdout, "  %-9s %s  %s, %d entries\n", e.name, e.url, e.about, e.entries)
	}

	// Render every example template into the work directory.
	p := &pipeline{engine: &template.Engine{Providers: newProviders(cfg, fetch.Options{})}}
	names, _ := fs.Glob(files, "templates/*.tpl")
	sort.Strings(names)
	for _, name := range names {
		text, err := fs.ReadFile(files, name)
		if err != nil {
			return &exitError{code: exitSetup, err: err}
		}
		tpl, err := template.Parse(template.Source{Name: "examples/" + name}, string(text), template.DefaultDelims)
		if err != nil {
			return usageErr(err)
		}
		dst := filepath.Join(work, "out", strings.TrimSuffix(path.Base(name), ".tpl"))
		p.files = append(p.files, fileSpec{src: name, dst: dst, mode: render.DefaultMode, tpl: tpl})
	}
	start := time.Now()
	res, err := p.Refresh(ctx)
	if err != nil {
		return failureErr(err)
	}
	took := time.Since(start)

	fmt.Fprintf(stdout, "\nRendered %d templates into %s:\n", len(p.files), filepath.Join(work, "out"))
	for _, f := range p.files {
		content, err := os.ReadFile(f.dst)
		if err != nil {
			return failureErr(err)
		}
		shown := string(content)
		if !*show {
			shown = maskValues(shown, res.Secrets)
		}
		fmt.Fprintf(stdout, "\n--- %s -> %s (mode %04o)\n%s", f.src, filepath.Base(f.dst), f.mode, shown)
		if !strings.HasSuffix(shown, "\n") {
			fmt.Fprintln(stdout)
		}
	}
	var counts []string
	total := 0
	for _, e := range emus {
		counts = append(counts, fmt.Sprintf("%s %d", e.name, e.emu.Requests()))
		total += e.emu.Requests()
	}
	fmt.Fprintf(stdout, "\n%d references resolved with %d HTTP requests (%s) in %s, decrypted client-side.\n",
		res.Refs, total, strings.Join(counts, ", "), took.Round(time.Millisecond))
	if !*show {
		fmt.Fprintln(stdout, "Secret values are masked; --show-secrets prints them.")
	}

	if !*serve {
		fmt.Fprintln(stdout, "Next: `injector dev --serve` keeps the emulators up so you can try `injector run`, `get` and `check` against them.")
		os.RemoveAll(work)
		return nil
	}
	envFile := filepath.Join(work, "dev.env")
	if err := writeDevEnv(envFile, emus); err != nil {
		return &exitError{code: exitSetup, err: err}
	}
	fmt.Fprintf(stdout, `
Emulators are running until Ctrl-C. In another shell:
  set -a; . %s; set +a
  injector get passwork:prod/db/postgres --field login
  injector check -t examples/templates/app.env.tpl:/dev/null
  injector run --env 'DB_PASSWORD=<< passwork "prod/db/postgres" >>' -- sh -c 'echo "password has ${#DB_PASSWORD} characters"'
`, envFile)
	<-ctx.Done()
	os.RemoveAll(work)
	return nil
}

// startEmulators starts and seeds one emulator per provider that has seed
// data, and returns the settings that point injector at them.
func startEmulators(seed *fetchtest.Seed, work string) ([]*devEmulator, *providerConfig, error) {
	cfg := &providerConfig{}
	var emus []*devEmulator

	pw := passworktest.NewServer()
	emus = append(emus, &devEmulator{name: "passwork", url: pw.URL, about: "Passwork 7 API, client-side encryption on", emu: pw, entries: len(seed.Passwork)})
	if err := pw.Seed(seed.Passwork); err != nil {
		return emus, nil, fmt.Errorf("passwork seed: %w", err)
	}
	cfg.Passwork = pw.Config()
	emus[len(emus)-1].env = map[string]string{
		"PASSWORK_URL": cfg.Passwork.URL, "PASSWORK_TOKEN": cfg.Passwork.Token,
		"PASSWORK_REFRESH_TOKEN": cfg.Passwork.RefreshToken, "PASSWORK_MASTER_KEY": cfg.Passwork.MasterKey,
	}

	pb, err := passbolttest.New()
	if err != nil {
		return emus, nil, fmt.Errorf("passbolt emulator: %w", err)
	}
	emus = append(emus, &devEmulator{name: "passbolt", url: pb.URL, about: "Passbolt 5 API, JWT login, v5 encrypted metadata", emu: pb, entries: len(seed.Passbolt)})
	if err := pb.Seed(seed.Passbolt); err != nil {
		return emus, nil, fmt.Errorf("passbolt seed: %w", err)
	}
	cfg.Passbolt = pb.Config()
	emus[len(emus)-1].env = map[string]string{
		"PASSBOLT_URL": cfg.Passbolt.URL, "PASSBOLT_USER_ID": cfg.Passbolt.UserID,
		"PASSBOLT_PRIVATE_KEY": cfg.Passbolt.PrivateKey, "PASSBOLT_PASSPHRASE": cfg.Passbolt.Passphrase,
	}
	return emus, cfg, nil
}

// maskValues replaces every secret value in s with asterisks.
func maskValues(s string, secrets []string) string {
	sorted := append([]string(nil), secrets...)
	sort.Slice(sorted, func(i, j int) bool { return len(sorted[i]) > len(sorted[j]) })
	for _, v := range sorted {
		if v = strings.TrimSpace(v); v != "" {
			s = strings.ReplaceAll(s, v, "********")
		}
	}
	return s
}

// writeDevEnv writes a file of settings for the running emulators, ready
// for `set -a; . FILE`. Multi-line values (keys) go to files of their own
// and are referenced as NAME_FILE.
func writeDevEnv(path string, emus []*devEmulator) error {
	var b strings.Builder
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
