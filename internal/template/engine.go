package template

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/injector-dev/injector/internal/fetch"
)

// Resolver resolves a batch of references for one provider. Results are
// index-aligned with refs; the error is for failures of the whole batch.
type Resolver interface {
	Resolve(ctx context.Context, refs []fetch.Ref) ([]fetch.Result, error)
}

// ResolverFunc adapts a function to Resolver.
type ResolverFunc func(ctx context.Context, refs []fetch.Ref) ([]fetch.Result, error)

func (f ResolverFunc) Resolve(ctx context.Context, refs []fetch.Ref) ([]fetch.Result, error) {
	return f(ctx, refs)
}

// Engine renders templates with secrets from its providers.
type Engine struct {
	// Providers maps a provider function name to its resolver. A name with
	// no entry resolves to an error saying the provider is not configured.
	Providers map[string]Resolver
}

// maxRounds bounds discovery: each round can only add references whose
// names depend on values found in the round before, so real templates need
// one or two.
const maxRounds = 8

// Rendered is the result of rendering a set of templates.
type Rendered struct {
	Outputs [][]byte // index-aligned with the templates given
	// Secrets holds every resolved secret value, for masking and for
	// scrubbing error messages.
	Secrets []string
	// Refs is the number of distinct references resolved.
	Refs int
}

// Render resolves every reference in tpls and executes them. It is
// all-or-nothing: any problem in any template returns Errors listing every
// problem found, with positions, and no output.
func (e *Engine) Render(ctx context.Context, tpls []*Template) (*Rendered, error) {
	res, err := e.resolveAll(ctx, tpls)
	if err != nil {
		return nil, err
	}
	secrets := res.secrets()
	if errs := res.refErrors(tpls); len(errs) > 0 {
		return nil, redact(errs, secrets)
	}
	out := &Rendered{Outputs: make([][]byte, len(tpls)), Secrets: secrets, Refs: len(res.results)}
	var errs Errors
	for i, t := range tpls {
		b, err := t.execute(res, false)
		if err != nil {
			errs = append(errs, t.execError(err))
			continue
		}
		out.Outputs[i] = b
	}
	if len(errs) > 0 {
		return nil, redact(errs, secrets)
	}
	return out, nil
}

// resolution holds what one render has resolved so far.
type resolution struct {
	mu      sync.Mutex
	results map[fetch.Ref]fetch.Result
	missing map[fetch.Ref]bool   // asked for during discovery, not yet resolved
	order   []fetch.Ref          // refs in the order first asked for
	askedBy map[fetch.Ref]string // the template that first asked, for errors
}

func (r *resolution) lookup(ref fetch.Ref, discover bool, asker string) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	res, ok := r.results[ref]
	if !ok {
		if discover {
			if !r.missing[ref] {
				r.missing[ref] = true
				r.order = append(r.order, ref)
			}
			if _, seen := r.askedBy[ref]; !seen {
				r.askedBy[ref] = asker
			}
			return "", nil
		}
		// Cannot happen after a complete discovery; say so plainly.
		return "", fmt.Errorf("%s was not resolved before rendering", ref)
	}
	if res.Err != nil {
		return "", res.Err
	}
	return res.Value, nil
}

func (r *resolution) secrets() []string {
	seen := map[string]bool{}
	var out []string
	for _, ref := range r.order {
		if res, ok := r.results[ref]; ok && res.Err == nil && res.Value != "" && !seen[res.Value] {
			seen[res.Value] = true
			out = append(out, res.Value)
		}
	}
	return out
}

// refErrors turns failed references into positioned errors: one per place a
// failed reference is written, and one per template for references built at
// run time (no literal position).
func (r *resolution) refErrors(tpls []*Template) Errors {
	var errs Errors
	reported := map[fetch.Ref]bool{}
	for _, t := range tpls {
		for _, l := range t.refs {
			if res, ok := r.results[l.ref]; ok && res.Err != nil {
				errs = append(errs, refError(l.pos, l.ref, res.Err))
				reported[l.ref] = true
			}
		}
	}
	for _, ref := range r.order {
		if res := r.results[ref]; res.Err != nil && !reported[ref] {
			errs = append(errs, refError(r.askedBy[ref]+": (computed reference)", ref, res.Err))
		}
	}
	return errs
}

// refError positions a reference's error, naming the reference unless the
// provider's message already does.
func refError(pos string, ref fetch.Ref, err error) *Error {
	e := &Error{Pos: pos, Msg: err.Error()}
	if !strings.Contains(e.Msg, ref.String()) {
		e.Ref = ref.String()
	}
	return e
}

// resolveAll runs discovery rounds until no template asks for a reference
// that is not resolved yet.
func (e *Engine) resolveAll(ctx context.Context, tpls []*Template) (*resolution, error) {
	res := &resolution{results: map[fetch.Ref]fetch.Result{}, missing: map[fetch.Ref]bool{}, askedBy: map[fetch.Ref]string{}}
	for round := 0; ; round++ {
		res.missing = map[fetch.Ref]bool{}
		var argErrs Errors
		for _, t := range tpls {
			if _, err := t.execute(res, true); err != nil {
				var ae *argError
				if errors.As(err, &ae) {
					argErrs = append(argErrs, t.execError(err))
				}
				// Other errors in discovery come from placeholder values
				// ("" where a secret will be); the final execution reports
				// any that remain.
			}
		}
		if len(argErrs) > 0 {
			return nil, argErrs
		}
		if len(res.missing) == 0 {
			return res, nil
		}
		if round == maxRounds {
			return nil, fmt.Errorf("references still changing after %d discovery rounds; a reference depends on itself?", maxRounds)
		}
		if err := e.resolveMissing(ctx, res); err != nil {
			return nil, err
		}
	}
}

// resolveMissing resolves the missing references, one batch per provider,
// providers in parallel.
func (e *Engine) resolveMissing(ctx context.Context, res *resolution) error {
	byProvider := map[string][]fetch.Ref{}
	for _, ref := range res.order {
		if res.missing[ref] {
			byProvider[ref.Provider] = append(byProvider[ref.Provider], ref)
		}
	}
	names := make([]string, 0, len(byProvider))
	for n := range byProvider {
		names = append(names, n)
	}
	sort.Strings(names)

	type batch struct {
		refs    []fetch.Ref
		results []fetch.Result
		err     error
	}
	batches := make([]batch, len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		batches[i].refs = byProvider[name]
		r, ok := e.Providers[name]
		if !ok {
			batches[i].err = fmt.Errorf("%s: provider is not configured (see `injector --help` for its environment variables)", name)
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			batches[i].results, batches[i].err = r.Resolve(ctx, batches[i].refs)
			if batches[i].err == nil && len(batches[i].results) != len(batches[i].refs) {
				batches[i].err = fmt.Errorf("%s: resolver returned %d results for %d references", name, len(batches[i].results), len(batches[i].refs))
			}
		}()
	}
	wg.Wait()

	var errs Errors
	for _, b := range batches {
		if b.err != nil {
			errs = append(errs, b.err)
			continue
		}
		for j, ref := range b.refs {
			res.results[ref] = b.results[j]
		}
	}
	if len(errs) > 0 {
		return errs
	}
	return nil
}

// argError is a provider function called with bad arguments: a template
// error, not a resolution error, so discovery stops on it.
type argError struct{ err error }

func (e *argError) Error() string { return e.err.Error() }
func (e *argError) Unwrap() error { return e.err }

// execute runs the template once against res. In discovery mode provider
// calls record the references they need and return "".
func (t *Template) execute(res *resolution, discover bool) ([]byte, error) {
	tm, err := t.tmpl.Clone()
	if err != nil {
		return nil, err
	}
	funcs := map[string]any{}
	for _, p := range Providers {
		funcs[p] = func(args ...string) (string, error) {
			ref, err := newRef(p, args)
			switch {
			case err != nil && (len(args) == 0 || len(args) > 2):
				return "", &argError{err} // wrong in any round
			case err != nil && discover:
				return "", nil // likely built from a placeholder; decided in the final run
			case err != nil:
				return "", err
			}
			return res.lookup(ref, discover, t.Source.Name)
		}
	}
	tm.Funcs(funcs)
	var buf bytes.Buffer
	if err := tm.Execute(&buf, nil); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// redact replaces secret values in error messages. Errors built by this
// package and the providers never contain values, but a template can put
// one into an error itself (sprig's fail, a bad b64dec input), and an error
// message must never carry a secret to a log.
func redact(errs Errors, secrets []string) error {
	out := make(Errors, len(errs))
	for i, e := range errs {
		out[i] = ScrubError(e, secrets)
	}
	return out
}

// MinScrubLen is the shortest value Scrub replaces. Shorter values ("app",
// "5432") are everywhere in paths and messages; replacing them would mangle
// errors and, worse, show where the value occurs. Passwords are longer.
const MinScrubLen = 4

// Scrub replaces every occurrence of every secret of at least MinScrubLen
// bytes in s with "[redacted]", longest first so a secret that contains
// another is removed whole.
func Scrub(s string, secrets []string) string {
	sorted := append([]string(nil), secrets...)
	sort.Slice(sorted, func(i, j int) bool { return len(sorted[i]) > len(sorted[j]) })
	for _, v := range sorted {
		if len(v) >= MinScrubLen {
			s = strings.ReplaceAll(s, v, "[redacted]")
		}
	}
	return s
}

// ScrubError returns err unchanged if its message holds no secret, else a
// new error with the secrets replaced.
func ScrubError(err error, secrets []string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	if clean := Scrub(msg, secrets); clean != msg {
		return errors.New(clean)
	}
	return err
}
