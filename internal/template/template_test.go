package template

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/Masterminds/sprig/v3"

	"github.com/injector-dev/injector/internal/fetch"
)

// fakeProvider resolves from a map keyed by "path#field" and counts calls.
type fakeProvider struct {
	mu      sync.Mutex
	values  map[string]string
	batches [][]fetch.Ref
	fail    error
}

func (f *fakeProvider) Resolve(_ context.Context, refs []fetch.Ref) ([]fetch.Result, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.batches = append(f.batches, refs)
	if f.fail != nil {
		return nil, f.fail
	}
	out := make([]fetch.Result, len(refs))
	for i, r := range refs {
		v, ok := f.values[r.Path+"#"+r.Field]
		if !ok {
			out[i].Err = &fetch.NotFoundError{Kind: "entry", Name: r.Path, Nearby: []string{"prod/db"}}
			continue
		}
		out[i].Value = v
	}
	return out, nil
}

func mustParse(t *testing.T, name, text string) *Template {
	t.Helper()
	tp, err := Parse(Source{Name: name}, text, [2]string{})
	if err != nil {
		t.Fatalf("Parse(%q): %v", text, err)
	}
	return tp
}

func TestRender(t *testing.T) {
	p := &fakeProvider{values: map[string]string{
		"prod/db#password": "s3cret",
		"prod/db#login":    "app",
		"ref#password":     "prod/db",
		"keys#password":    "a,b",
	}}
	e := &Engine{Providers: map[string]Resolver{"passwork": p}}
	tests := []struct {
		name, text, want string
	}{
		{"plain text untouched", "no actions {{ .here }}", "no actions {{ .here }}"},
		{"default field", `x=<< passwork "prod/db" >>`, "x=s3cret"},
		{"explicit field", `<< passwork "prod/db" "login" >>:<< passwork "prod/db" "password" >>`, "app:s3cret"},
		{"sprig pipe", `<< passwork "prod/db" | upper | b64enc >>`, "UzNDUkVU"},
		{"computed reference", `<< passwork (passwork "ref") "login" >>`, "app"},
		{"range over split", `<< range (passwork "keys" | splitList ",") >>[<< . >>]<< end >>`, "[a][b]"},
		{"id form", `<< passwork "prod/db" "password" | len >>`, "6"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := e.Render(context.Background(), []*Template{mustParse(t, "t", tt.text)})
			if err != nil {
				t.Fatal(err)
			}
			if got := string(out.Outputs[0]); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestRenderBatchesAcrossTemplates(t *testing.T) {
	p := &fakeProvider{values: map[string]string{}}
	var tpls []*Template
	for i := range 50 {
		path := fmt.Sprintf("v%d/e%d", i%3, i)
		p.values[path+"#password"] = fmt.Sprint("pw", i)
		tpls = append(tpls, mustParse(t, fmt.Sprint("t", i), fmt.Sprintf(`<< passwork %q >><< passwork %q >>`, path, path)))
	}
	e := &Engine{Providers: map[string]Resolver{"passwork": p}}
	out, err := e.Render(context.Background(), tpls)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.batches) != 1 {
		t.Fatalf("provider called %d times, want 1 batch", len(p.batches))
	}
	if len(p.batches[0]) != 50 {
		t.Errorf("batch has %d refs, want 50 (deduplicated)", len(p.batches[0]))
	}
	if string(out.Outputs[7]) != "pw7pw7" || out.Refs != 50 {
		t.Errorf("output %q refs %d", out.Outputs[7], out.Refs)
	}
}

func TestErrorsNamePositions(t *testing.T) {
	p := &fakeProvider{values: map[string]string{"ok#password": "fine"}}
	e := &Engine{Providers: map[string]Resolver{"passwork": p}}
	tests := []struct {
		name, text string
		src        Source
		want       []string
	}{
		{"missing secret", "a\nb=<< passwork \"nope\" \"password\" >>\n", Source{Name: "app.tpl"},
			[]string{`app.tpl:2:6: passwork "nope" "password": entry "nope" not found; available: "prod/db"`}},
		{"two problems both listed", `<< passwork "x" >> << passwork "y" "f" >>`, Source{Name: "f"},
			[]string{`f:1:4: passwork "x" "password"`, `f:1:23: passwork "y" "f"`}},
		{"offset source (env file line)", `<< passwork "nope" >>`, Source{Name: "app.env", Line: 4, Col: 8},
			[]string{`app.env:4:11: passwork "nope" "password"`}},
		{"unconfigured provider", `<< passbolt "a/b" >>`, Source{Name: "f"},
			[]string{`passbolt: provider is not configured`}},
		{"bad arity", `<< passwork "a" "b" "c" >>`, Source{Name: "f"},
			[]string{`f:1:4: at <passwork "a" "b" "c">: passwork: takes a path and an optional field, got 3 arguments`}},
		{"exec error after resolve", `<< passwork "ok" | fail >>`, Source{Name: "f"},
			[]string{`f:1:20: at <fail>: fail: failed (details withheld`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tp, err := Parse(tt.src, tt.text, [2]string{})
			if err != nil {
				t.Fatal(err)
			}
			_, err = e.Render(context.Background(), []*Template{tp})
			if err == nil {
				t.Fatal("want error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error\n%s\ndoes not contain\n%s", err, w)
				}
			}
			if strings.Contains(err.Error(), "fine") {
				t.Errorf("error leaks a secret value: %s", err)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		text string
		want string
	}{
		{"line one\n  x << passwork \"a\" \n", "f.tpl:2:5: "},
		{"<< nosuchfunc \"a\" >>", `f.tpl:1:1: function "nosuchfunc" not defined`},
		{"ok\nok << if true >>", "f.tpl:2:4: "},
	}
	for _, tt := range tests {
		_, err := Parse(Source{Name: "f.tpl"}, tt.text, [2]string{})
		if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
			t.Errorf("Parse(%q) error = %v, want prefix %q", tt.text, err, tt.want)
		}
	}
}

func TestCustomDelims(t *testing.T) {
	p := &fakeProvider{values: map[string]string{"a#password": "v"}}
	tp, err := Parse(Source{Name: "f"}, `{{ .x }} [[ passwork "a" ]]`, [2]string{"[[", "]]"})
	if err != nil {
		t.Fatal(err)
	}
	out, err := (&Engine{Providers: map[string]Resolver{"passwork": p}}).Render(context.Background(), []*Template{tp})
	if err != nil {
		t.Fatal(err)
	}
	if string(out.Outputs[0]) != "{{ .x }} v" {
		t.Errorf("got %q", out.Outputs[0])
	}
}

func TestBatchFailureIsReported(t *testing.T) {
	p := &fakeProvider{fail: errors.New("passwork: authentication failed")}
	_, err := (&Engine{Providers: map[string]Resolver{"passwork": p}}).Render(context.Background(), []*Template{mustParse(t, "f", `<< passwork "a" >>`)})
	if err == nil || !strings.Contains(err.Error(), "authentication failed") {
		t.Fatalf("err = %v", err)
	}
}

// errorsOf renders text (as app.tpl) against values and returns the error.
func errorsOf(t *testing.T, values map[string]string, text string) string {
	t.Helper()
	p := &fakeProvider{values: values}
	_, err := (&Engine{Providers: map[string]Resolver{"passwork": p}}).Render(context.Background(), []*Template{mustParse(t, "app.tpl", text)})
	if err == nil {
		t.Fatalf("%s: want an error", text)
	}
	return err.Error()
}

// A reference computed from a secret is reported by the position of the
// call, never by its text: the path, pieces of it, and the names the
// provider lists near it are all derived from the secret.
func TestComputedReferenceReportedByPosition(t *testing.T) {
	msg := errorsOf(t, map[string]string{"ptr#password": "vault-x9/missingentry"},
		"line one\nx=<< passwork (passwork \"ptr\") >>")
	want := `app.tpl:2:6: at <passwork (passwork "ptr")>: passwork: reference built from a secret (not shown): entry not found`
	if !strings.Contains(msg, want) {
		t.Errorf("error = %q, want %q", msg, want)
	}
	for _, leak := range []string{"vault-x9", "missingentry", "prod/db", "redacted"} {
		if strings.Contains(msg, leak) {
			t.Errorf("error %q carries %q, derived from the secret", msg, leak)
		}
	}

	// Built from template text alone, a computed reference is as safe to
	// show as a literal one, and is shown.
	msg = errorsOf(t, nil, `<< range list "a" "b" >><< passwork (printf "prod/%s" .) >><< end >>`)
	want = `app.tpl:1:28: at <passwork (printf "prod/%s" .)>: passwork "prod/a" "password": entry "prod/a" not found; available: "prod/db"`
	if !strings.Contains(msg, want) {
		t.Errorf("error = %q, want %q", msg, want)
	}
}

// Redaction must not become an oracle: a secret equal to a common word
// leaves that word alone in messages, which read the same whatever the
// secret is.
func TestErrorsDoNotDependOnSecretValues(t *testing.T) {
	text := `<< passwork "ok" >> << passwork "gone" "password" >>`
	var msgs []string
	for _, v := range []string{"password", "gone", "entry", "zq-unrelated-value"} {
		msgs = append(msgs, errorsOf(t, map[string]string{"ok#password": v}, text))
	}
	for i, m := range msgs {
		if m != msgs[0] {
			t.Errorf("message %d differs with the secret's value:\n%s\n%s", i, m, msgs[0])
		}
	}
	if !strings.Contains(msgs[0], `passwork "gone" "password"`) {
		t.Errorf("error = %q, want the reference as written", msgs[0])
	}
}

// Function errors show the function and the kind of bad input, not the
// function's message, which may quote the input; a fail message written in
// the template is shown.
func TestFunctionErrorsWithholdData(t *testing.T) {
	values := map[string]string{"ok#password": "pZ-value-7"}
	tests := []struct {
		text, want string
		leaks      []string
	}{
		{`<< passwork "ok" | mustFromJson >>`, "at <mustFromJson>: mustFromJson: input is not valid JSON", []string{"'p'", "pZ"}},
		{`<< fail (passwork "ok") >>`, "fail: failed (details withheld", []string{"pZ"}},
		{`<< fail (printf "bad %s" (passwork "ok")) >>`, "fail: failed (details withheld", []string{"pZ"}},
		{`<< if passwork "ok" >><< fail "port is missing" >><< end >>`, "fail: port is missing", nil},
		{`<< range passwork "ok" >>x<< end >>`, "execution failed (details withheld", []string{"pZ"}},
		{`<< index (list 1 2) (passwork "ok" | len) >>`, "index: failed (details withheld", []string{"10"}},
		{`<< mustRegexFind (passwork "ok" | printf "%s(") "x" >>`, "mustRegexFind: input is not a valid regular expression", []string{"pZ"}},
	}
	for _, tt := range tests {
		msg := errorsOf(t, values, tt.text)
		if !strings.Contains(msg, tt.want) {
			t.Errorf("%s: error = %q, want %q", tt.text, msg, tt.want)
		}
		for _, l := range tt.leaks {
			if strings.Contains(msg, l) {
				t.Errorf("%s: error %q carries %q", tt.text, msg, l)
			}
		}
	}
}

// Templates are hermetic: every function that reads the environment, the
// network, the clock or randomness is a parse error that names it.
func TestNonHermeticFunctionsAreParseErrors(t *testing.T) {
	// Every function sprig itself calls non-hermetic is withheld.
	hermetic := sprig.HermeticTxtFuncMap()
	for name := range sprig.TxtFuncMap() {
		if _, ok := hermetic[name]; !ok {
			if _, ok := Withheld()[name]; !ok {
				t.Errorf("sprig's %s is not hermetic but not withheld", name)
			}
		}
	}
	for name, why := range Withheld() {
		_, err := Parse(Source{Name: "f.tpl"}, `x << `+name+` "PASSWORK_TOKEN" >>`, [2]string{})
		want := fmt.Sprintf("f.tpl:1:3: function %q is not available: it %s", name, why)
		if err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("%s: err = %v, want %q", name, err, want)
		}
	}
	_, err := Parse(Source{Name: "f.tpl"}, `<< env "PASSWORK_TOKEN" >>`, [2]string{})
	if err == nil || !strings.Contains(err.Error(), `"env" is not available: it reads injector's environment`) {
		t.Errorf("env: err = %v", err)
	}
	// The repeatable remainder of sprig stays.
	if _, err := Parse(Source{Name: "f.tpl"}, `<< "a" | b64enc | sha256sum | upper | toDate "2006" | unixEpoch >>`, [2]string{}); err != nil {
		t.Errorf("hermetic functions: %v", err)
	}
}

func TestCallsProvider(t *testing.T) {
	tests := []struct {
		text string
		want bool
	}{
		{`<< passwork "prod/db" >>`, true},
		{`postgres://app:<< passbolt "db" | urlquery >>@db/app`, true},
		{`<<- passagent "x" "totp" ->>`, true},
		{`<< (passwork "a") >>`, true},
		{`<< printf "%s:%s" (passwork "a" "login") (passwork "a") >>`, true},
		{`<< "x" | passwork >>`, true},
		{`<< passwork "unclosed`, true}, // meant as a template: fails loudly
		{`a << b`, false},
		{`cat <<EOF > x`, false},
		{"() {  cat <<EOF\nuse passwork to log in >> log\nEOF\n}", false},
		{`x << passworkish >> y`, false},
		{`<< "t" >>`, false},
		{`<< .Values.passwork >>`, false},
		{`1 << 3 >> 1`, false},
		{`plain`, false},
	}
	for _, tt := range tests {
		if got := CallsProvider(tt.text, DefaultDelims); got != tt.want {
			t.Errorf("CallsProvider(%q) = %v, want %v", tt.text, got, tt.want)
		}
	}
	if !CallsProvider(`[[ passwork "a" ]]`, [2]string{"[[", "]]"}) || CallsProvider(`<< passwork "a" >>`, [2]string{"[[", "]]"}) {
		t.Error("custom delimiters are not honoured")
	}
}

// A provider failure in a batch holding references built from secrets
// may quote them (a URL path, a name the server did not find): it is
// reported by kind only. A batch of literal references keeps its message.
func TestTaintedBatchFailureWithholdsMessage(t *testing.T) {
	p := ResolverFunc(func(_ context.Context, refs []fetch.Ref) ([]fetch.Result, error) {
		out := make([]fetch.Result, len(refs))
		for i, r := range refs {
			if r.Path != "ptr" {
				return nil, &fetch.StatusError{Provider: "passwork", Method: "GET", Path: "/api/v1/items/" + r.Path, Status: 503}
			}
			out[i].Value = "vault-x9/secret-item"
		}
		return out, nil
	})
	e := &Engine{Providers: map[string]Resolver{"passwork": p}}
	_, err := e.Render(context.Background(), []*Template{mustParse(t, "app.tpl", `<< passwork (passwork "ptr") >>`)})
	if err == nil || !strings.Contains(err.Error(), "passwork: resolving references built from secrets (not shown): the server answered HTTP 503") || strings.Contains(err.Error(), "vault-x9") {
		t.Errorf("err = %v", err)
	}
	_, err = e.Render(context.Background(), []*Template{mustParse(t, "app.tpl", `<< passwork "lit" >>`)})
	if err == nil || !strings.Contains(err.Error(), "GET /api/v1/items/lit: HTTP 503") {
		t.Errorf("literal batch: err = %v", err)
	}
}
