package template

import (
	"context"
	"strings"
	"testing"

	"github.com/injector-dev/injector/internal/fetch"
)

// FuzzParse feeds arbitrary text to Parse and, when it parses, renders it
// with an in-memory resolver. Neither may panic, an error must never
// carry a resolved value (the fake resolver returns a canary), and a
// plain template must render as text/template renders it.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"",
		"plain text without actions",
		`<< passwork "prod/db/postgres" "password" >>`,
		`<< passbolt "infra/ci/deploy-key" >>`,
		`<< passagent "id:pwd_123" "totp" >>`,
		`<< passwork (printf "%s/db" (passwork "a/b" "login")) >>`,
		`<< if passwork "a/b" >>yes<< else >>no<< end >>`,
		`<< range $i, $e := until 3 >><< passwork (printf "v/f/%d" $i) >><< end >>`,
		`<< passwork "a/b" | b64enc | b64dec >>`,
		`<< fail (passwork "a/b") >>`,
		`<< passwork >>`,
		`<< passwork "a" "b" "c" >>`,
		`<< passwork "" >>`,
		`<< passwork "a/b" "" >>`,
		`<< define "x" >><< passwork "a/b" >><< end >><< template "x" >>`,
		"line\n<< passwork \"x\"\n",
		`<< .Missing >>`,
		`<<- passwork "a/b" ->>`,
		`<< /* comment */ >>`,
		`<< $x := passwork "a/b" >><< $x >>`,
	} {
		f.Add(s, "<<", ">>")
	}
	f.Add(`{{ passwork "a/b" }}`, "{{", "}}")
	f.Add(`[[ passwork "a/b" ]]`, "[[", "]]")

	const secret = "FUZZ-CANARY-91c2"
	resolver := ResolverFunc(func(_ context.Context, refs []fetch.Ref) ([]fetch.Result, error) {
		out := make([]fetch.Result, len(refs))
		for i, r := range refs {
			if strings.Contains(r.Path, "missing") {
				out[i].Err = &fetch.NotFoundError{Kind: "entry", Name: r.Path}
				continue
			}
			out[i].Value = secret + "/" + r.Path + "#" + r.Field // a mix-up between entries shows
		}
		return out, nil
	})
	e := &Engine{Providers: map[string]Resolver{"passwork": resolver, "passbolt": resolver}}

	f.Fuzz(func(t *testing.T, text, left, right string) {
		tpl, err := Parse(Source{Name: "fuzz.tpl"}, text, [2]string{left, right})
		if err != nil {
			if tpl != nil {
				t.Fatal("Parse returned a template and an error")
			}
			return
		}
		out, err := e.Render(context.Background(), []*Template{tpl})
		if tpl.plain != nil {
			// A plain template writes what text/template writes for it.
			slow, _ := Parse(Source{Name: "fuzz.tpl"}, text, [2]string{left, right})
			slow.plain = nil
			want, werr := e.Render(context.Background(), []*Template{slow})
			switch {
			case (err == nil) != (werr == nil) || err != nil && err.Error() != werr.Error():
				t.Fatalf("plain execution: error %v; text/template: %v", err, werr)
			case err == nil && string(out.Outputs[0]) != string(want.Outputs[0]):
				t.Fatalf("plain execution wrote %q, text/template %q", out.Outputs[0], want.Outputs[0])
			}
		}
		if err != nil {
			// Unless the template wrote it itself: template text may be quoted.
			if strings.Contains(err.Error(), secret) && !strings.Contains(text, secret) {
				t.Fatalf("render error carries a secret: %v", err)
			}
			return
		}
		if len(out.Outputs) != 1 {
			t.Fatalf("%d outputs for 1 template", len(out.Outputs))
		}
	})
}
