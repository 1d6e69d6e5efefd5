// Package pipeline turns templates into their outputs: files rendered
// atomically and the environment of the process injector runs. It is the
// heart of every command: New parses what the command line names (file
// templates, env files, --env values, the inherited environment), and each
// Refresh is one full resolve-and-render cycle, which daemon mode repeats
// every interval.
//
// The data path is pipeline → template (parse, discover, resolve through
// the providers of Providers) → fetch/<provider> → crypto, with render
// writing the files.
package pipeline

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/injector-dev/injector/internal/render"
	"github.com/injector-dev/injector/internal/template"
)

// Config is everything a pipeline is built from. It is plain data: the
// command line parses flags and settings into it.
type Config struct {
	// Templates are file templates as SRC:DST[:MODE] (the -t flag); SRC
	// is read from the file system, MODE is octal and defaults to 0600.
	// DST "-" prints the template to Stdout.
	Templates []string
	// Files are file templates already parsed, rendered before Templates
	// (dev uses them for the examples built into the binary).
	Files []File
	// EnvFiles are files of KEY=TEMPLATE lines for the child's
	// environment (--env-file).
	EnvFiles []string
	// Env are KEY=TEMPLATE values for the child's environment (--env).
	Env []string
	// EnvFrom are selections, PROVIDER:SELECTION, whose every entry
	// becomes a variable of the child's environment (--env-from; see
	// fetch.Selector), named by EnvNaming (NamingInjector by default)
	// after EnvPrefix. Entry names are the server's data: a name that
	// collides, or that changes how the child runs (dangerous), fails the
	// render; EnvOverride lets an explicit variable (Env, EnvFiles, an
	// inherited template) replace a bulk one, EnvAllow names dangerous
	// names that may be set.
	EnvFrom     []string
	EnvPrefix   string
	EnvNaming   string
	EnvOverride bool
	EnvAllow    []string
	// Environ is the environment the child inherits, usually
	// os.Environ(); nil for none (render runs no child). Variables whose
	// value calls a provider are templates themselves (see childEnv).
	Environ []string
	// NoEnvTemplates passes every inherited value on unchanged, templates
	// or not (--no-env-templates).
	NoEnvTemplates bool
	// OwnSetting reports whether an inherited variable configures
	// injector itself, so it is withheld from the child. Nil means
	// OwnSetting (this package's function).
	OwnSetting func(key string) bool
	// Delims are the left and right template delimiters.
	Delims [2]string
	// Owner, if set, is the owner of rendered files; nil leaves them to
	// injector's user.
	Owner *render.Owner
	// Stdout receives the templates whose destination is "-", after every
	// file is written, in template order. Nil rejects "-": only a render
	// that runs once prints (see checkDestinations).
	Stdout io.Writer
	// NoWrite says the pipeline will only Render (check): destinations
	// are checked, but "-" and the null device are accepted.
	NoWrite bool
	// Providers resolve the secrets, by template function name (see
	// Providers).
	Providers map[string]template.Resolver
}

// ErrUsage is matched (errors.Is) by the problems of New that are in how
// the templates are named rather than in the templates: a -t that is not
// SRC:DST[:MODE], a destination that cannot be kept, an --env that is not
// KEY=TEMPLATE. The command line reports them as usage errors (exit 2).
var ErrUsage = errors.New("usage error")

type usageError struct{ error }

func (e usageError) Unwrap() error        { return e.error }
func (e usageError) Is(target error) bool { return target == ErrUsage }

// File is one file template and where it renders.
type File struct {
	Src, Dst string
	Mode     fs.FileMode
	Template *template.Template
}

// envVar is one environment variable whose value is a template.
type envVar struct {
	key string
	tpl *template.Template
}

// Pipeline is everything one command renders: file templates and env
// templates, with the engine that resolves their secrets. A Pipeline is not
// safe for concurrent use: daemon mode refreshes it from one goroutine.
type Pipeline struct {
	engine *template.Engine
	files  []File
	envs   []envVar
	bulk   *bulk
	owner  *render.Owner
	stdout io.Writer
	// baseEnv is the environment the child inherits, without the
	// templated variables and without injector's own settings.
	baseEnv []string

	lastEnv string // hash of the last rendered env, to detect changes
}

// Outcome is what one Refresh produced.
type Outcome struct {
	Changed    []string // destinations written because their content changed
	Env        []string // the child's full environment, never nil
	EnvChanged bool     // the templated variables differ from the last Refresh
	Secrets    []string // every resolved value, for masking
	Refs       int      // distinct references resolved
	BulkKeys   []string // the variables --env-from set, sorted
	// Outputs is the rendered content, index-aligned with Templates
	// (files, then env values); dev displays it.
	Outputs [][]byte
}

// New parses every template cfg names. It keeps going past problems, so
// one run shows every broken template: it always returns the pipeline of
// the templates that parsed, with the problems of those that did not
// (empty when all parsed). A command that renders must refuse to run when
// there are problems; check reports them with what the rest resolves to.
func New(cfg Config) (*Pipeline, template.Errors) {
	own := cfg.OwnSetting
	if own == nil {
		own = OwnSetting
	}
	p := &Pipeline{engine: &template.Engine{Providers: cfg.Providers}, owner: cfg.Owner, stdout: cfg.Stdout}
	p.files = append(p.files, cfg.Files...)
	var errs template.Errors
	for _, spec := range cfg.Templates {
		f, err := parseFileSpec(spec)
		if err != nil {
			errs = append(errs, usageError{err})
			continue
		}
		text, err := os.ReadFile(f.Src)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		f.Template, err = template.Parse(template.Source{Name: f.Src}, string(text), cfg.Delims)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		p.files = append(p.files, f)
	}
	for _, err := range checkDestinations(p.files, cfg.Stdout != nil, cfg.NoWrite) {
		errs = append(errs, usageError{err})
	}
	keep, templated, err := childEnv(cfg.Environ, cfg.Delims, own, !cfg.NoEnvTemplates)
	if err != nil {
		errs = append(errs, err)
	}
	p.baseEnv, p.envs = keep, templated
	for _, path := range cfg.EnvFiles {
		vars, err := parseEnvFile(path, cfg.Delims)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		p.envs = append(p.envs, vars...)
	}
	for i, kv := range cfg.Env {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || !validEnvKey(k) {
			errs = append(errs, usageError{fmt.Errorf("--env %q: want KEY=TEMPLATE", kv)})
			continue
		}
		tpl, err := template.Parse(template.Source{Name: fmt.Sprintf("--env #%d (%s)", i+1, k), Col: len(k) + 2}, v, cfg.Delims)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		p.envs = append(p.envs, envVar{key: k, tpl: tpl})
	}
	p.envs = dedupeEnv(p.envs)
	b, berrs := newBulk(cfg)
	p.bulk = b
	errs = append(errs, berrs...)
	// Every key once: the templated value replaces the inherited one.
	p.baseEnv = withoutKeys(p.baseEnv, p.envs)
	return p, errs
}

// Logout ends the server sessions the pipeline's providers opened (see
// the package function Logout).
func (p *Pipeline) Logout(ctx context.Context) error {
	return Logout(ctx, p.engine.Providers)
}

// CredentialExpiry returns when each provider's credentials expire, where
// known (see the package function CredentialExpiry).
func (p *Pipeline) CredentialExpiry() map[string]time.Time {
	return CredentialExpiry(p.engine.Providers)
}

// Files returns the file templates, in render order.
func (p *Pipeline) Files() []File { return p.files }

// EnvKeys returns the names of the templated environment variables.
func (p *Pipeline) EnvKeys() []string {
	keys := make([]string, len(p.envs))
	for i, e := range p.envs {
		keys[i] = e.key
	}
	return keys
}

// Templates returns every template in a fixed order: files, then env.
func (p *Pipeline) Templates() []*template.Template {
	var out []*template.Template
	for _, f := range p.files {
		out = append(out, f.Template)
	}
	for _, e := range p.envs {
		out = append(out, e.tpl)
	}
	return out
}

// Render resolves every secret and renders every template in memory; it
// writes nothing (check uses it).
func (p *Pipeline) Render(ctx context.Context) (*template.Rendered, error) {
	return p.engine.RenderSelect(ctx, p.Templates(), p.bulk.sels)
}

// Check is Render that also names the --env-from variables, so check
// reports their collisions and refused names; it returns their keys.
func (p *Pipeline) Check(ctx context.Context) (*template.Rendered, []string, error) {
	out, err := p.Render(ctx)
	if err != nil {
		return nil, nil, err
	}
	vars, err := p.bulk.vars(out.Listings, p.EnvKeys())
	if err != nil {
		return nil, nil, err
	}
	keys := make([]string, len(vars))
	for i, v := range vars {
		keys[i] = v.key
	}
	return out, keys, nil
}

// Refresh resolves every secret, writes the files whose content changed
// (all or nothing) and builds the child's environment. On error nothing is
// written and the previous output stays in place, except that Changed
// names the files already replaced when a rename failed midway (their
// change actions are still due).
func (p *Pipeline) Refresh(ctx context.Context) (Outcome, error) {
	out, err := p.Render(ctx)
	if err != nil {
		return Outcome{}, err
	}
	// Named before anything is written: a collision fails the whole render.
	bulkVars, err := p.bulk.vars(out.Listings, p.EnvKeys())
	if err != nil {
		return Outcome{}, err
	}
	var files []render.File
	var printed [][]byte
	for i, f := range p.files {
		if f.Dst == Stdout {
			printed = append(printed, out.Outputs[i])
			continue
		}
		files = append(files, render.File{Path: f.Dst, Content: out.Outputs[i], Mode: f.Mode, Owner: p.owner})
	}
	changed, err := render.WriteAll(files)
	if err != nil {
		// Paths and OS errors only; nothing to scrub.
		return Outcome{Changed: changed}, err
	}
	// Printed last, so a failed write prints nothing. A stream has no
	// mode and no atomic replacement: what was asked for is the text.
	for _, b := range printed {
		if _, err := p.stdout.Write(b); err != nil {
			return Outcome{Changed: changed}, fmt.Errorf("render -: %w", err)
		}
	}
	// Never nil: a nil Env makes os/exec pass injector's own environment,
	// credentials included, to the child.
	env := make([]string, 0, len(p.baseEnv)+len(bulkVars)+len(p.envs))
	h := sha256.New()
	bulkKeys := make([]string, 0, len(bulkVars))
	for _, v := range bulkVars {
		bulkKeys = append(bulkKeys, v.key)
	}
	// A bulk variable replaces an inherited one of its name, as an
	// explicit one does (see withoutKeys).
	for _, kv := range p.baseEnv {
		if k, _, _ := strings.Cut(kv, "="); !slices.Contains(bulkKeys, k) {
			env = append(env, kv)
		}
	}
	for _, v := range bulkVars {
		env = append(env, v.key+"="+v.value)
		fmt.Fprintf(h, "%d:%s=%d:%s;", len(v.key), v.key, len(v.value), v.value)
	}
	for i, e := range p.envs {
		v := string(out.Outputs[len(p.files)+i])
		env = append(env, e.key+"="+v)
		fmt.Fprintf(h, "%d:%s=%d:%s;", len(e.key), e.key, len(v), v)
	}
	sum := string(h.Sum(nil))
	envChanged := sum != p.lastEnv
	p.lastEnv = sum
	return Outcome{Changed: changed, Env: env, EnvChanged: envChanged, Secrets: out.Secrets, Refs: out.Refs, Outputs: out.Outputs, BulkKeys: bulkKeys}, nil
}
