package template

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

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
			[]string{`f:1:20: at <fail>: fail: [redacted]`}},
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

func TestScrub(t *testing.T) {
	got := Scrub("pw=abcdefgh and abcd", []string{"abcd", "abcdefgh"})
	if got != "pw=[redacted] and [redacted]" {
		t.Errorf("got %q", got)
	}
}

func TestComputedReferenceErrorNamesTemplate(t *testing.T) {
	p := &fakeProvider{values: map[string]string{"ptr#password": "does/not/exist"}}
	tp := mustParse(t, "app.tpl", `<< passwork (passwork "ptr") >>`)
	_, err := (&Engine{Providers: map[string]Resolver{"passwork": p}}).Render(context.Background(), []*Template{tp})
	// The path came from a secret, so it is scrubbed like one.
	if err == nil || !strings.Contains(err.Error(), `app.tpl: (computed reference): passwork "[redacted]" "password"`) {
		t.Errorf("err = %v", err)
	}
}

func TestScrubKeepsShortValues(t *testing.T) {
	got := Scrub("render out/app-x: busy; pw=s3cret", []string{"app", "s3cret"})
	if got != "render out/app-x: busy; pw=[redacted]" {
		t.Errorf("got %q", got)
	}
}
