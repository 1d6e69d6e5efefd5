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

// Lister is a Resolver that also lists selections (folders, vaults, tags)
// for the list functions (passworkEntries…) and bulk injection. It
// resolves refs and lists sels in one pass, so a template set that names
// both costs the round trips of one. Listings are index-aligned with sels.
type Lister interface {
	Resolver
	ResolveList(ctx context.Context, refs []fetch.Ref, sels []fetch.Selector) ([]fetch.Result, []fetch.Listing, error)
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
	// Listings are the selections given to RenderSelect, index-aligned.
	Listings []fetch.Listing
	// Warnings lists the references written in a template that failed to
	// resolve but that the render did not need (in a branch not taken),
	// with their positions. They fail nothing; check shows them.
	Warnings Errors
}

// Render resolves every reference in tpls and executes them. It is
// all-or-nothing: any problem in any template returns Errors listing every
// problem found, with positions, and no output.
//
// Only references the final execution evaluates can fail the render.
// Discovery executes the templates with placeholders and so meets
// references in branches the real values never take (the else of << if
// eq (passwork "a" "login") "app" >>); when one of those fails, that is a
// warning (Rendered.Warnings), not an error. A failed reference written in
// the template evaluates to "" and the execution goes on, so that every
// failed reference it evaluates is listed at once; what the execution
// does after that (an error from a function given "") is left out as a
// likely consequence.
//
// Error messages never carry text derived from a secret, by construction
// rather than by redaction (see execError and taintedError): replacing
// each secret value wherever it occurs would hide a value that is also a
// common word ("password") everywhere that word appears, telling whoever
// reads the log what the value is, and would miss the fragments and
// transformations of a value that other messages quote.
func (e *Engine) Render(ctx context.Context, tpls []*Template) (*Rendered, error) {
	return e.RenderSelect(ctx, tpls, nil)
}

// RenderSelect is Render that also lists the selections sels (run
// --env-from), in the same batches as the templates' first references.
// A selection that fails is an error of the render, like a reference.
func (e *Engine) RenderSelect(ctx context.Context, tpls []*Template, sels []fetch.Selector) (*Rendered, error) {
	res, err := e.resolveAll(ctx, tpls, sels)
	if err != nil {
		return nil, err
	}
	var errs, warnings Errors
	out := &Rendered{Outputs: make([][]byte, len(tpls)), Secrets: res.secrets(), Refs: len(res.results)}
	for _, sel := range sels {
		l := res.lists[sel]
		if l.Err != nil {
			errs = append(errs, l.Err)
		}
		out.Listings = append(out.Listings, l)
	}
	for i, t := range tpls {
		rn := t.newRun(res, false)
		b, err := t.execute(rn)
		failed, unused, consequence := res.refErrors(t, rn.used, err == nil)
		warnings = append(warnings, unused...)
		errs = append(errs, failed...)
		switch {
		case err != nil && !consequence:
			errs = append(errs, t.execError(err))
		case err == nil && len(failed) == 0:
			out.Outputs[i] = b
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	out.Warnings = warnings
	return out, nil
}

// resolution holds what one render has resolved so far.
type resolution struct {
	mu      sync.Mutex
	results map[fetch.Ref]fetch.Result
	missing map[fetch.Ref]bool // asked for during discovery, not yet resolved
	order   []fetch.Ref        // refs in the order first asked for
	round   int                // the discovery round running
	// tainted are the references built from a secret's value: those
	// first asked for after the first round, unless written literally in
	// a template. The first round runs with "" for every secret, so what
	// it asks for is a function of the template text alone (literal
	// references, and computed ones like passwork (printf "prod/%s" "db")).
	tainted map[fetch.Ref]bool
	literal map[fetch.Ref]bool // written in a template; only for discovery
	failed  int                // results with an error

	// lists are the selections listed, for the list functions and
	// RenderSelect; missingSels and selOrder are as missing and order.
	lists       map[fetch.Selector]fetch.Listing
	missingSels map[fetch.Selector]bool
	selOrder    []fetch.Selector
	taintedSels map[fetch.Selector]bool
}

// run is one execution of one template: a discovery round, or the final
// execution, which records the references it evaluates.
type run struct {
	res      *resolution
	discover bool
	literal  map[fetch.Ref]bool // written in this template (shared, read only)
	// used, in the final execution, holds the failed references it
	// evaluated (refErrors asks only about those).
	used map[fetch.Ref]bool
}

func (t *Template) newRun(res *resolution, discover bool) *run {
	rn := &run{res: res, discover: discover, literal: t.refSet}
	if !discover {
		rn.used = map[fetch.Ref]bool{}
	}
	return rn
}

// lookup is what a provider function returns for ref. A failed reference
// written in this template gives "" and the execution goes on, in
// discovery as in the final execution (so discovery explores what the
// final execution will run); refErrors reports it by its position. One
// computed at run time stops the execution with its error, positioned by
// the call.
func (rn *run) lookup(ref fetch.Ref) (string, error) {
	r := rn.res
	r.mu.Lock()
	defer r.mu.Unlock()
	res, ok := r.results[ref]
	if !ok {
		if rn.discover {
			if !r.missing[ref] {
				r.missing[ref] = true
				r.order = append(r.order, ref)
				r.tainted[ref] = r.round > 0 && !r.literal[ref]
			}
			return "", nil
		}
		// Cannot happen after a complete discovery; say so plainly, but
		// without the reference, which may be computed.
		return "", &plainError{ref.Provider + ": a reference was not resolved before rendering (a bug: please report it)"}
	}
	if rn.used != nil && res.Err != nil {
		rn.used[ref] = true
	}
	switch {
	case res.Err == nil:
		return res.Value, nil
	case rn.literal[ref]:
		return "", nil
	case rn.discover:
		return "", res.Err
	case r.tainted[ref]:
		return "", &taintedError{provider: ref.Provider, err: res.Err}
	}
	// A reference computed from template text alone: the provider's
	// message is as safe as for a literal one.
	msg := res.Err.Error()
	if !strings.Contains(msg, ref.String()) {
		msg = ref.String() + ": " + msg
	}
	return "", &plainError{msg}
}

func (r *resolution) secrets() []string {
	seen := make(map[string]bool, len(r.order))
	out := make([]string, 0, len(r.order))
	for _, ref := range r.order {
		if res, ok := r.results[ref]; ok && res.Err == nil && res.Value != "" && !seen[res.Value] {
			seen[res.Value] = true
			out = append(out, res.Value)
		}
	}
	// The password and custom fields of a listed entry, what --env-from
	// exports. Login, url and description are not secret (Passwork keeps
	// them in clear text even with client-side encryption), and masking
	// a common word would say what it is; a template that renders one
	// through a reference gets it masked as any referenced value.
	for _, sel := range r.selOrder {
		for _, e := range r.lists[sel].Entries {
			for _, f := range e.Fields {
				if (f.Name == "password" || f.Custom) && f.Value != "" && !seen[f.Value] {
					seen[f.Value] = true
					out = append(out, f.Value)
				}
			}
		}
	}
	return out
}

// list is what a list function returns for sel; see lookup. In discovery
// a selection not listed yet is recorded and yields no entries.
func (rn *run) list(sel fetch.Selector) ([]Entry, error) {
	r := rn.res
	r.mu.Lock()
	defer r.mu.Unlock()
	l, ok := r.lists[sel]
	if !ok {
		if rn.discover {
			r.addSel(sel)
			return nil, nil
		}
		return nil, &plainError{sel.Provider + ": a selection was not listed before rendering (a bug: please report it)"}
	}
	switch {
	case l.Err == nil:
		return entriesOf(l.Entries), nil
	case rn.discover:
		return nil, nil
	case r.taintedSels[sel]:
		return nil, &taintedError{provider: sel.Provider, err: l.Err}
	}
	return nil, &plainError{l.Err.Error()}
}

// addSel records sel as wanted; the caller holds r.mu.
func (r *resolution) addSel(sel fetch.Selector) {
	if _, ok := r.lists[sel]; ok || r.missingSels[sel] {
		return
	}
	r.missingSels[sel] = true
	r.selOrder = append(r.selOrder, sel)
	r.taintedSels[sel] = r.round > 0
}

// refErrors turns the failed references written in t into positioned
// errors, one per place a failed reference is written: failed, those the
// final execution evaluated (used), and unused, those it did not, which
// are warnings. An execution that did not complete (an error stopped it)
// cannot tell which of the rest it needed: then all of them are failed.
// consequence reports that the execution evaluated a failed reference, so
// an error that stopped it likely follows from the "" it got. The
// provider's message is shown whole: it holds the reference as written in
// the template and the names that exist near it, never a value.
func (r *resolution) refErrors(t *Template, used map[fetch.Ref]bool, completed bool) (failed, unused Errors, consequence bool) {
	if r.failed == 0 {
		return nil, nil, false
	}
	for _, l := range t.refs {
		res, ok := r.results[l.ref]
		if !ok || res.Err == nil {
			continue
		}
		e := refError(l.pos, l.ref, res.Err)
		consequence = consequence || used[l.ref]
		if used[l.ref] || !completed {
			failed = append(failed, e)
			continue
		}
		e.Msg += " (not needed by this render: in a branch it does not take)"
		unused = append(unused, e)
	}
	return failed, unused, consequence
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

// taintedError is the failure of a reference built from a secret's value,
// such as passwork (passwork "meta/pointer" "url"). Its path is the secret
// or is made from it, so neither the path nor the provider's message
// (which quotes it and lists the names near it) is shown: only the
// provider and what kind of failure it was. The template execution error
// around it gives the position of the call.
type taintedError struct {
	provider string
	err      error
}

func (e *taintedError) Error() string {
	return fmt.Sprintf("%s: reference built from a secret (not shown): %s", e.provider, failureKind(e.err))
}

func (e *taintedError) Unwrap() error { return e.err }

// failureKind describes err by its type alone, never by its text.
func failureKind(err error) string {
	var nf *fetch.NotFoundError
	var amb *fetch.AmbiguousError
	var st *fetch.StatusError
	switch {
	case errors.As(err, &nf):
		return nf.Kind + " not found"
	case errors.As(err, &amb):
		return fmt.Sprintf("%s is ambiguous (%d matches)", amb.Kind, len(amb.Candidates))
	case errors.As(err, &st):
		return fmt.Sprintf("the server answered HTTP %d", st.Status)
	case errors.Is(err, context.DeadlineExceeded):
		return "timed out"
	case errors.Is(err, context.Canceled):
		return "canceled"
	}
	return "could not be resolved"
}

// plainError is an error whose message holds only fixed words, template
// text and counts, so it is shown as it is.
type plainError struct{ msg string }

func (e *plainError) Error() string { return e.msg }

// resolveAll runs discovery rounds until no template asks for a reference
// that is not resolved yet.
func (e *Engine) resolveAll(ctx context.Context, tpls []*Template, sels []fetch.Selector) (*resolution, error) {
	written := 0
	for _, t := range tpls {
		written += len(t.refs)
	}
	res := &resolution{results: make(map[fetch.Ref]fetch.Result, written), tainted: map[fetch.Ref]bool{},
		lists: map[fetch.Selector]fetch.Listing{}, missingSels: map[fetch.Selector]bool{}, taintedSels: map[fetch.Selector]bool{}}
	// A static template's references are known from its text: they are
	// resolved in the first batch and the template is executed once, for
	// real. Only the others are run for discovery, which needs to know
	// every reference written in any template.
	var discover []*Template
	for _, t := range tpls {
		if !t.static {
			discover = append(discover, t)
		}
	}
	if len(discover) > 0 {
		res.literal = make(map[fetch.Ref]bool, written)
		for _, t := range tpls {
			for _, l := range t.refs {
				res.literal[l.ref] = true
			}
		}
	}
	for round := 0; ; round++ {
		res.round = round
		if round == 0 {
			res.missing = make(map[fetch.Ref]bool, written)
			res.order = make([]fetch.Ref, 0, written)
		} else {
			res.missing = map[fetch.Ref]bool{}
		}
		res.missingSels = map[fetch.Selector]bool{}
		if round == 0 {
			for _, sel := range sels {
				res.addSel(sel)
			}
			for _, t := range tpls {
				if !t.static {
					continue
				}
				for _, l := range t.refs {
					if !res.missing[l.ref] {
						res.missing[l.ref] = true
						res.order = append(res.order, l.ref)
					}
				}
			}
		}
		var argErrs Errors
		for _, t := range discover {
			if _, err := t.execute(t.newRun(res, true)); err != nil {
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
		if len(res.missing) == 0 && len(res.missingSels) == 0 {
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
	// Each provider's batch is allocated at its size: 10,000 references
	// grew a slice through a dozen copies.
	miss := make([]fetch.Ref, 0, len(res.missing))
	count := map[string]int{}
	for _, ref := range res.order {
		if res.missing[ref] {
			miss = append(miss, ref)
			count[ref.Provider]++
		}
	}
	byProvider := make(map[string][]fetch.Ref, len(count))
	for p, n := range count {
		byProvider[p] = make([]fetch.Ref, 0, n)
	}
	for _, ref := range miss {
		byProvider[ref.Provider] = append(byProvider[ref.Provider], ref)
	}
	selsBy := map[string][]fetch.Selector{}
	for _, sel := range res.selOrder {
		if res.missingSels[sel] {
			selsBy[sel.Provider] = append(selsBy[sel.Provider], sel)
			if _, ok := byProvider[sel.Provider]; !ok {
				byProvider[sel.Provider] = nil
			}
		}
	}
	names := make([]string, 0, len(byProvider))
	for n := range byProvider {
		names = append(names, n)
	}
	sort.Strings(names)

	type batch struct {
		refs     []fetch.Ref
		sels     []fetch.Selector
		results  []fetch.Result
		listings []fetch.Listing
		err      error
		tainted  bool // some refs or selections were built from secrets
	}
	batches := make([]batch, len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		b := &batches[i]
		b.refs, b.sels = byProvider[name], selsBy[name]
		for _, ref := range b.refs {
			b.tainted = b.tainted || res.tainted[ref]
		}
		for _, sel := range b.sels {
			b.tainted = b.tainted || res.taintedSels[sel]
		}
		r, ok := e.Providers[name]
		if !ok {
			b.err = fmt.Errorf("%s: provider is not configured (see `injector --help` for its environment variables)", name)
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			switch l, ok := r.(Lister); {
			case len(b.sels) == 0:
				b.results, b.err = r.Resolve(ctx, b.refs)
			case ok:
				b.results, b.listings, b.err = l.ResolveList(ctx, b.refs, b.sels)
			default:
				b.err = fmt.Errorf("%s: this provider cannot list folders or tags", name)
			}
			switch {
			case b.err != nil:
			case len(b.results) != len(b.refs):
				b.err = fmt.Errorf("%s: resolver returned %d results for %d references", name, len(b.results), len(b.refs))
			case len(b.listings) != len(b.sels):
				b.err = fmt.Errorf("%s: resolver returned %d listings for %d selections", name, len(b.listings), len(b.sels))
			}
		}()
	}
	wg.Wait()

	var errs Errors
	for i, b := range batches {
		if b.err != nil && b.tainted {
			// The provider's message may quote a path built from a
			// secret (in a URL, a name the server did not find).
			errs = append(errs, &plainError{fmt.Sprintf("%s: resolving references built from secrets (not shown): %s", names[i], failureKind(b.err))})
			continue
		}
		if b.err != nil {
			errs = append(errs, b.err)
			continue
		}
		for j, ref := range b.refs {
			res.results[ref] = b.results[j]
			if b.results[j].Err != nil {
				res.failed++
			}
		}
		for j, sel := range b.sels {
			res.lists[sel] = b.listings[j]
		}
	}
	if len(errs) > 0 {
		return errs
	}
	return nil
}

// argError is a provider function called with bad arguments: a template
// error, not a resolution error, so discovery stops on it.
type argError struct {
	provider string
	err      error // newRef's: a count, no data
}

func (e *argError) Error() string { return e.err.Error() }
func (e *argError) Unwrap() error { return e.err }

// execute runs the template once. In discovery provider calls record the
// references they need and return "".
func (t *Template) execute(rn *run) ([]byte, error) {
	if t.plain != nil && !rn.discover {
		if b, ok := t.executePlain(rn); ok {
			return b, nil
		}
		// An error: text/template says where, in its words (execError).
	}
	t.exec.Lock()
	defer t.exec.Unlock()
	t.cur = rn
	defer func() { t.cur = nil }()
	var buf bytes.Buffer
	if err := t.tmpl.Execute(&buf, nil); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// executePlain is execute for a plain template: its text with each
// reference's value in place of the call, as text/template would write it.
// It reports false if a lookup failed, leaving the error to execute.
func (t *Template) executePlain(rn *run) ([]byte, bool) {
	size := 0
	for _, p := range t.plain {
		size += len(p.text)
		if p.isRef {
			size += 32 // a guess at a value's length; append grows it if short
		}
	}
	out := make([]byte, 0, size)
	for _, p := range t.plain {
		if !p.isRef {
			out = append(out, p.text...)
			continue
		}
		v, err := rn.lookup(p.ref)
		if err != nil {
			return nil, false
		}
		out = append(out, v...)
	}
	return out, true
}

// listCall is the list function of provider p (passworkEntries…) called
// with selection in this execution.
func (rn *run) listCall(p, selection string) ([]Entry, error) {
	sel, err := fetch.ParseSelector(p, selection)
	switch {
	case err != nil && rn.discover:
		return nil, nil // maybe built from a placeholder
	case err != nil:
		return nil, &plainError{p + "Entries: " + err.Error()} // fixed words and template text
	}
	return rn.list(sel)
}

// call is provider p called with args in this execution.
func (rn *run) call(p string, args []string) (string, error) {
	ref, err := newRef(p, args)
	switch {
	case err != nil && (len(args) == 0 || len(args) > 2):
		return "", &argError{p, err} // wrong in any round
	case err != nil && rn.discover:
		return "", nil // likely built from a placeholder; decided in the final run
	case err != nil:
		return "", &plainError{p + ": " + err.Error()} // newRef's messages are fixed words
	}
	return rn.lookup(ref)
}
