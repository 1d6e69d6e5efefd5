// Package template parses injector templates and renders them with secrets.
//
// Templates are Go text/template with "<<" ">>" delimiters and the sprig
// function library, less the functions that are not hermetic (see
// Withheld), plus one function per secret provider:
//
//	<< passwork "prod/db/postgres" "password" >>
//	<< passbolt "infra/ci/deploy-key" >>          (field defaults to "password")
//	<< passagent "id:pwd_123" "totp" >>
//
// Rendering is split in the way consul-template splits it: first discover
// every reference by executing the templates with placeholder values, then
// resolve all references in one batch per provider, then execute for real.
// Discovery repeats until the set of references is stable, so a reference
// computed from another secret's value is still found.
package template

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"regexp/syntax"
	"sort"
	"strconv"
	"strings"
	"sync"
	"text/template"
	"text/template/parse"
	"time"

	"github.com/Masterminds/sprig/v3"

	"github.com/injector-dev/injector/internal/fetch"
)

// Providers are the template function names that resolve secrets. They are
// always defined, so a template parses even where a provider is not
// configured; resolving then says what configuration is missing.
var Providers = []string{"passwork", "passbolt", "passagent"}

// DefaultDelims are the action delimiters. They differ from Go's "{{ }}" so
// templates can hold Helm charts, Jinja files and other "{{ }}" text.
var DefaultDelims = [2]string{"<<", ">>"}

// Source says where a template's text came from, for error messages. Line and
// Col give the position of the text's first character in that file (1-based);
// they matter for templates cut out of a larger file, like one line of an env
// file.
type Source struct {
	Name string
	Line int
	Col  int
}

func (s Source) base() Source {
	if s.Line == 0 {
		s.Line = 1
	}
	if s.Col == 0 {
		s.Col = 1
	}
	return s
}

// Template is one parsed template.
type Template struct {
	Source Source
	text   string
	delims [2]string
	tmpl   *template.Template
	// refs are the references written literally in the text, with where;
	// refSet the same references as a set, built once (every execution
	// asks whether a reference is one of them).
	refs   []located
	refSet map[fetch.Ref]bool
	// plain, when the text is only text and provider calls with literal
	// arguments (an env file: KEY=<< passwork "path" >> on every line), is
	// that text cut at each call: executing it is writing the pieces and
	// the values in turn, which is what text/template would do, without
	// its reflection per call (most of a render of 10,000 references).
	plain []piece
	// static: every provider call in the text has literal arguments, so
	// refs is the whole set of references the template can ask for and
	// the engine resolves them without a discovery execution.
	static bool
	calls  int // provider calls written in the text
	lists  int // list function calls (passworkEntries…) written in the text
	// literals are the string constants written in the text. An error
	// message may quote one of them (sprig's fail "port missing"): it is
	// template text, not data.
	literals map[string]bool
	// used are the function names the text calls; only those are bound
	// into tmpl (see Parse).
	used map[string]bool

	// exec serialises executions: tmpl's provider functions answer from
	// cur, the execution running. Binding per-execution state this way
	// instead of cloning tmpl and adding functions to the clone saves
	// copying its function maps at every execution.
	exec sync.Mutex
	cur  *run
}

// funcs is the function map every template is checked against: sprig's
// text functions less Withheld, the providers, and text/template's
// built-ins (whose names only, for the parser). Built once and never
// written, so templates share it; each template binds only the functions
// it calls (copying all of sprig's ~200 into every template, as
// template.Funcs does, was most of a cold run's CPU with 100 env
// templates).
var funcs = sync.OnceValue(func() map[string]any {
	m := sprig.TxtFuncMap()
	for name := range Withheld() {
		delete(m, name)
	}
	for _, p := range Providers {
		m[p] = builtin // bound per template, see bind
		m[p+"Entries"] = builtin
	}
	return m
})

// builtinNames are text/template's predefined functions, which the parser
// must know are defined (it wants a non-nil value; execution uses
// text/template's own).
var builtinNames = sync.OnceValue(func() map[string]any {
	return map[string]any{
		"and": builtin, "call": builtin, "html": builtin, "index": builtin, "slice": builtin, "js": builtin,
		"len": builtin, "not": builtin, "or": builtin, "print": builtin, "printf": builtin, "println": builtin,
		"urlquery": builtin, "eq": builtin, "ge": builtin, "gt": builtin, "le": builtin, "lt": builtin, "ne": builtin,
	}
})

// builtin stands for a function bound elsewhere, in the parser's maps.
func builtin() {}

// located is a reference and the place it is written.
type located struct {
	ref fetch.Ref
	pos string // "file:line:col"
}

// Parse parses text. delims may be zero for the defaults.
func Parse(src Source, text string, delims [2]string) (*Template, error) {
	src = src.base()
	if delims[0] == "" || delims[1] == "" {
		delims = DefaultDelims
	}
	t := &Template{Source: src, text: text, delims: delims, literals: map[string]bool{}, used: map[string]bool{}}
	// What text/template's Parse does, with the shared maps: parse.Parse
	// only reads them.
	trees, err := parse.Parse(src.Name, text, delims[0], delims[1], funcs(), builtinNames())
	if err != nil {
		return nil, t.parseError(err)
	}
	names := make([]string, 0, len(trees))
	for name := range trees {
		names = append(names, name)
	}
	sort.Strings(names) // refs in a stable order
	for _, name := range names {
		if tree := trees[name]; tree.Root != nil {
			t.walk(tree, tree.Root)
		}
	}
	t.static = t.calls == len(t.refs) && t.lists == 0
	t.refSet = make(map[fetch.Ref]bool, len(t.refs))
	for _, l := range t.refs {
		t.refSet[l.ref] = true
	}
	if len(trees) == 1 && t.static {
		for _, tree := range trees {
			t.plain = plainPieces(tree)
		}
	}
	tm := template.New(src.Name).Delims(delims[0], delims[1]).Option("missingkey=error").Funcs(t.bind())
	for _, name := range names {
		if _, err := tm.AddParseTree(name, trees[name]); err != nil {
			return nil, t.parseError(err)
		}
	}
	t.tmpl = tm
	return t, nil
}

// bind returns the functions t calls: sprig's as they are, the providers
// as closures that look the reference up in the execution running.
func (t *Template) bind() template.FuncMap {
	out := template.FuncMap{}
	for name := range t.used {
		if _, ok := builtinNames()[name]; ok || !isFunc(name) {
			continue
		}
		if isProvider(name) {
			out[name] = func(args ...string) (string, error) { return t.cur.call(name, args) }
			continue
		}
		if p, ok := strings.CutSuffix(name, "Entries"); ok && isProvider(p) {
			out[name] = func(selection string) ([]Entry, error) { return t.cur.listCall(p, selection) }
			continue
		}
		out[name] = funcs()[name]
	}
	return out
}

func isFunc(name string) bool {
	_, ok := funcs()[name]
	return ok
}

// walk collects the provider calls whose arguments are string literals, so
// errors about them can name file:line:col even before execution.
func (t *Template) walk(tree *parse.Tree, n parse.Node) {
	switch n := n.(type) {
	case *parse.ListNode:
		if n == nil {
			return
		}
		for _, c := range n.Nodes {
			t.walk(tree, c)
		}
	case *parse.ActionNode:
		t.walk(tree, n.Pipe)
	case *parse.PipeNode:
		if n == nil {
			return
		}
		for _, c := range n.Cmds {
			t.walk(tree, c)
		}
	case *parse.CommandNode:
		if ref, ok := literalRef(n); ok {
			loc, _ := tree.ErrorContext(n)
			t.refs = append(t.refs, located{ref: ref, pos: t.shift(loc)})
		}
		for _, a := range n.Args {
			t.walk(tree, a)
		}
	case *parse.IdentifierNode:
		t.used[n.Ident] = true
		if isProvider(n.Ident) {
			t.calls++
		}
		if p, ok := strings.CutSuffix(n.Ident, "Entries"); ok && isProvider(p) {
			t.lists++ // selections are found by discovery
		}
	case *parse.ChainNode:
		t.walk(tree, n.Node)
	case *parse.IfNode:
		t.walkBranch(tree, &n.BranchNode)
	case *parse.RangeNode:
		t.walkBranch(tree, &n.BranchNode)
	case *parse.WithNode:
		t.walkBranch(tree, &n.BranchNode)
	case *parse.TemplateNode:
		t.walk(tree, n.Pipe)
	case *parse.StringNode:
		t.literals[n.Text] = true
	}
}

// piece is one part of a plain template: text, or a reference whose value
// is written in its place.
type piece struct {
	text  string
	ref   fetch.Ref
	isRef bool
}

// plainPieces cuts tree into pieces if it is only text and actions that
// call a provider with literal arguments and print the result (no
// pipeline, variable, branch or other function); otherwise it returns nil.
func plainPieces(tree *parse.Tree) []piece {
	if tree == nil || tree.Root == nil {
		return nil
	}
	out := make([]piece, 0, len(tree.Root.Nodes))
	for _, n := range tree.Root.Nodes {
		switch n := n.(type) {
		case *parse.TextNode:
			out = append(out, piece{text: string(n.Text)})
		case *parse.ActionNode:
			p := n.Pipe
			if p == nil || p.IsAssign || len(p.Decl) > 0 || len(p.Cmds) != 1 {
				return nil
			}
			ref, ok := literalRef(p.Cmds[0])
			if !ok {
				return nil
			}
			out = append(out, piece{ref: ref, isRef: true})
		default:
			return nil
		}
	}
	return out
}

func (t *Template) walkBranch(tree *parse.Tree, b *parse.BranchNode) {
	t.walk(tree, b.Pipe)
	t.walk(tree, b.List)
	t.walk(tree, b.ElseList)
}

func literalRef(n *parse.CommandNode) (fetch.Ref, bool) {
	if len(n.Args) < 2 || len(n.Args) > 3 {
		return fetch.Ref{}, false
	}
	id, ok := n.Args[0].(*parse.IdentifierNode)
	if !ok || !isProvider(id.Ident) {
		return fetch.Ref{}, false
	}
	var args []string
	for _, a := range n.Args[1:] {
		s, ok := a.(*parse.StringNode)
		if !ok {
			return fetch.Ref{}, false
		}
		args = append(args, s.Text)
	}
	ref, err := newRef(id.Ident, args)
	return ref, err == nil
}

func isProvider(name string) bool {
	for _, p := range Providers {
		if p == name {
			return true
		}
	}
	return false
}

// newRef builds a reference from a provider function's arguments.
func newRef(provider string, args []string) (fetch.Ref, error) {
	switch len(args) {
	case 1:
		args = append(args, "password")
	case 2:
	default:
		return fetch.Ref{}, fmt.Errorf("takes a path and an optional field, got %d arguments", len(args))
	}
	if strings.TrimSpace(args[0]) == "" {
		return fetch.Ref{}, errors.New("empty path")
	}
	if args[1] == "" {
		// The path is not quoted: it may have been computed from a secret.
		return fetch.Ref{}, errors.New("empty field name")
	}
	return fetch.Ref{Provider: provider, Path: args[0], Field: args[1]}, nil
}

// shift turns a location from ErrorContext ("name:line:col", its column a
// 0-based byte offset), relative to the template text, into a 1-based one
// relative to the file the text came from.
func (t *Template) shift(loc string) string {
	rest, colText, ok1 := cutLast(loc, ":")
	_, lineText, ok2 := cutLast(rest, ":")
	line, err1 := strconv.Atoi(lineText)
	col, err2 := strconv.Atoi(colText)
	if !ok1 || !ok2 || err1 != nil || err2 != nil {
		return loc
	}
	return t.position(line, col+1)
}

// cutLast is strings.Cut at the last sep.
func cutLast(s, sep string) (before, after string, found bool) {
	if i := strings.LastIndex(s, sep); i >= 0 {
		return s[:i], s[i+len(sep):], true
	}
	return s, "", false
}

// position formats a text-relative line and column (col 0 = unknown) as a
// file position.
func (t *Template) position(line, col int) string {
	src := t.Source
	if line == 1 && col > 0 {
		col += src.Col - 1
	}
	line += src.Line - 1
	if col == 0 {
		col = 1
	}
	return fmt.Sprintf("%s:%d:%d", src.Name, line, col)
}

// parseErrRE matches text/template parse errors: "template: NAME:LINE: msg".
var parseErrRE = lazyRegexp(`^template: (.*?):(\d+): (.*)$`)

var unclosedRE = lazyRegexp(`^(unclosed action) started at .*:(\d+)$`)

// parseError rewrites a text/template parse error as "file:line:col: msg".
// text/template reports only the line; the column is that of the action the
// error is in, found by scanning for delimiters.
func (t *Template) parseError(err error) error {
	msg := err.Error()
	m := parseErrRE().FindStringSubmatch(msg)
	if m == nil {
		return &Error{Pos: t.position(1, 0), Msg: strings.TrimPrefix(msg, "template: ")}
	}
	line, _ := strconv.Atoi(m[2])
	msg = m[3]
	// "unclosed action started at NAME:N" is reported at the end of the
	// text; the start is the useful position.
	if u := unclosedRE().FindStringSubmatch(msg); u != nil {
		line, _ = strconv.Atoi(u[2])
		msg = u[1]
	}
	if f := undefinedRE().FindStringSubmatch(msg); f != nil {
		if why, ok := Withheld()[f[1]]; ok {
			msg = fmt.Sprintf("function %q is not available: it %s; templates are hermetic, their only inputs are the secrets and their own text", f[1], why)
		}
	}
	return &Error{Pos: t.position(line, actionColumn(t.text, line, t.delims[0])), Msg: msg}
}

var undefinedRE = lazyRegexp(`^function "(\w+)" not defined$`)

// actionColumn returns the 1-based column of the first action opening on the
// given line of text, or of the last one opened before it when the line has
// none (an action spanning lines). 0 means unknown.
func actionColumn(text string, line int, left string) int {
	lines := strings.SplitAfter(text, "\n")
	if line < 1 || line > len(lines) {
		return 0
	}
	if i := strings.Index(lines[line-1], left); i >= 0 {
		return len([]rune(lines[line-1][:i])) + 1
	}
	return 0
}

// Error is a template problem with the file position it refers to.
type Error struct {
	Pos string // "file:line:col", or "file" when the position is unknown
	Ref string // the reference involved, if any
	Msg string
}

func (e *Error) Error() string {
	if e.Ref != "" {
		return fmt.Sprintf("%s: %s: %s", e.Pos, e.Ref, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.Pos, e.Msg)
}

// Errors is every problem found in one render or check, in template order.
type Errors []error

func (es Errors) Error() string {
	var b strings.Builder
	for i, e := range es {
		if i > 0 {
			b.WriteString("\n")
		}
		b.WriteString(e.Error())
	}
	return b.String()
}

func (es Errors) Unwrap() []error { return es }

// execErrRE matches text/template execution errors:
// `template: NAME:LINE:COL: executing "NAME" at <ACTION>: msg`. ACTION is
// template text (text/template prints the node, cut at 20 characters).
var execErrRE = lazyRegexp(`^template: (.*?):(\d+):(\d+): executing "[^"]*" at <(.*?)>: (.*)$`)

// execError rewrites a text/template execution error as
// "file:line:col: at <action>: what failed".
//
// What failed is said without the failing function's own message, except
// where that message is known to hold no data: a function fed a secret
// may quote it, whole or in part (a JSON decoder quotes the character it
// choked on, text/template's range quotes the value it cannot iterate
// over), and no redaction can find every transformation of a value. So a
// message is shown only when it is ours (provider calls), a string
// written in the template (sprig's fail "port is missing"), or one of
// text/template's messages that name only types and template text;
// otherwise the error's Go type tells what kind of input was bad.
func (t *Template) execError(err error) error {
	m := execErrRE().FindStringSubmatch(err.Error())
	if m == nil {
		return &Error{Pos: t.Source.Name, Msg: "execution failed" + withheld}
	}
	line, _ := strconv.Atoi(m[2])
	col, _ := strconv.Atoi(m[3])
	return &Error{Pos: t.position(line, col+1), Msg: fmt.Sprintf("at <%s>: %s", m[4], t.describe(err, m[5]))}
}

const withheld = " (details withheld: they may quote data derived from a secret)"

// describe says what an execution error's message may show; see execError.
func (t *Template) describe(err error, msg string) string {
	var te *taintedError
	var pe *plainError
	var ae *argError
	switch {
	case errors.As(err, &te):
		return te.Error()
	case errors.As(err, &ae):
		return ae.provider + ": " + ae.Error()
	case errors.As(err, &pe):
		return pe.Error()
	}
	if rest, ok := strings.CutPrefix(msg, "error calling "); ok {
		name, fmsg, _ := strings.Cut(rest, ": ")
		if name == "fail" && t.literals[fmsg] {
			return "fail: " + fmsg
		}
		return name + ": " + inputKind(err)
	}
	for _, re := range typesOnlyRE() {
		if re.MatchString(msg) {
			return msg
		}
	}
	return "execution failed" + withheld
}

// typesOnlyRE match text/template execution messages whose variable parts
// are Go types, counts or names written in the template, never values.
var typesOnlyRE = sync.OnceValue(func() []*regexp.Regexp {
	return []*regexp.Regexp{
		regexp.MustCompile(`^wrong type for value; expected [\w.*\[\]{} ]+; got [\w.*\[\]{} ]+$`),
		regexp.MustCompile(`^wrong number of args for \w+: want (at least )?\d+ got \d+$`),
		regexp.MustCompile(`^can't evaluate field \w+ in type [\w.*\[\]{} ]+$`),
		regexp.MustCompile(`^(nil data; no entry|map has no entry) for key "\w+"$`),
		regexp.MustCompile(`^nil pointer evaluating [\w.*\[\]{} ]+\.\w+$`),
		regexp.MustCompile(`^invalid value; expected [\w.*\[\]{} ]+$`),
		regexp.MustCompile(`^undefined variable: \$\w*$`),
	}
})

// inputKind names what was wrong with a function's input from the error's
// type; see execError for why not from its text.
func inputKind(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	var b64 base64.CorruptInputError
	var num *strconv.NumError
	var tm *time.ParseError
	var u *url.Error
	var re *syntax.Error
	switch {
	case errors.As(err, &syn):
		return "input is not valid JSON" + withheld
	case errors.As(err, &typ):
		return "JSON input does not have the expected type" + withheld
	case errors.As(err, &b64):
		return "input is not valid base64" + withheld
	case errors.As(err, &num):
		return "input is not a number" + withheld
	case errors.As(err, &tm):
		return "input is not a valid time" + withheld
	case errors.As(err, &u):
		return "input is not a valid URL" + withheld
	case errors.As(err, &re):
		return "input is not a valid regular expression" + withheld
	}
	return "failed" + withheld
}

// lazyRegexp compiles expr on first use: these expressions read error
// messages, and compiling them at start-up was most of the package's
// init time.
func lazyRegexp(expr string) func() *regexp.Regexp {
	return sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(expr) })
}
