package template

import (
	"context"
	"strings"
	"testing"
	texttemplate "text/template"
)

// A template that is only text and provider calls with literal arguments
// is executed by writing its pieces (executePlain), not by text/template:
// the output must be byte for byte what text/template writes, and any
// other template must still go through text/template.
func TestPlainTemplatesRenderAsTextTemplate(t *testing.T) {
	values := map[string]string{
		"prod/db#password": "s3cr<et>&\"x\"", "prod/db#login": "app", "prod/api#token": "tok\nline2",
		"empty#password": "", "ünï/cødé#password": "✓",
	}
	tests := []struct {
		text  string
		plain bool
	}{
		{"DB=<< passwork \"prod/db\" >>\nUSER=<< passwork \"prod/db\" \"login\" >>\n", true},
		{"<< passwork \"prod/api\" \"token\" >><< passwork \"prod/db\" >>", true},
		{"a << passwork \"empty\" >> b\n<<- passwork \"ünï/cødé\" ->>   \n c", true},
		{"no references at all\n", true},
		{"", true},
		{"<</* a comment */>>A=<< passwork `prod/db` \"login\" >><<- /* trimmed */ ->>  B", true},
		{"T=<<passwork \"prod/api\" \"token\">>\t<< passwork \"prod/\\x64b\" >>", true},
		{"<< define \"t\" >>X=<< passwork \"prod/db\" >><< end >>", true},
		{"X=<< passbolt \"prod/db\" >> Y=<< passagent \"prod/db\" \"login\" >>", true},
		{"<< passwork \"prod/db\" | quote >>", false},
		{"<< $v := passwork \"prod/db\" >><< $v >>", false},
		{"<< if passwork \"prod/db\" >>y<< end >>", false},
		{"<< printf \"%s\" (passwork \"prod/db\") >>", false},
		{"<< define \"x\" >><< passwork \"prod/db\" >><< end >><< template \"x\" >>", false},
		{"<< \"literal\" >>", false},
		{"<< passwork (printf \"prod/%s\" \"db\") >>", false},
	}
	providers := map[string]Resolver{}
	for _, p := range Providers {
		providers[p] = &fakeProvider{values: values}
	}
	e := &Engine{Providers: providers}
	for _, tt := range tests {
		tp := mustParse(t, "t", tt.text)
		if got := tp.plain != nil; got != tt.plain {
			t.Errorf("%q: plain = %v, want %v", tt.text, got, tt.plain)
		}
		out, err := e.Render(context.Background(), []*Template{tp})
		if err != nil {
			t.Fatalf("%q: %v", tt.text, err)
		}
		// The same template executed by text/template.
		slow := mustParse(t, "t", tt.text)
		slow.plain = nil
		want, err := e.Render(context.Background(), []*Template{slow})
		if err != nil {
			t.Fatalf("%q (text/template): %v", tt.text, err)
		}
		if string(out.Outputs[0]) != string(want.Outputs[0]) {
			t.Errorf("%q: plain execution wrote %q, text/template %q", tt.text, out.Outputs[0], want.Outputs[0])
		}
		if !tt.plain {
			continue
		}
		// And the plain path is the one taken: with text/template's tree
		// swapped for one that writes something else, the output is the same.
		fast := mustParse(t, "t", tt.text)
		fast.tmpl = texttemplate.Must(texttemplate.New("t").Parse("text/template ran"))
		if got, err := e.Render(context.Background(), []*Template{fast}); err != nil || string(got.Outputs[0]) != string(want.Outputs[0]) {
			t.Errorf("%q: a plain template went through text/template (%v)", tt.text, err)
		}
	}
}

// A failed reference in a plain template fails the render with its
// position, and every failed one is listed, as for any template.
func TestPlainTemplateErrors(t *testing.T) {
	p := &fakeProvider{values: map[string]string{"ok#password": "fine"}}
	e := &Engine{Providers: map[string]Resolver{"passwork": p}}
	tp := mustParse(t, "app.env", "A=<< passwork \"ok\" >>\nB=<< passwork \"nope\" >>\nC=<< passwork \"gone\" \"login\" >>\n")
	if tp.plain == nil {
		t.Fatal("env-style template not seen as plain")
	}
	_, err := e.Render(context.Background(), []*Template{tp})
	if err == nil {
		t.Fatal("render with failed references succeeded")
	}
	for _, w := range []string{`app.env:2:6: passwork "nope" "password": entry "nope" not found`, `app.env:3:6: passwork "gone" "login"`} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error\n%s\ndoes not contain\n%s", err, w)
		}
	}
	if strings.Contains(err.Error(), "fine") {
		t.Errorf("error leaks a secret value: %s", err)
	}
}
