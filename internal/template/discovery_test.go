package template

import (
	"context"
	"strings"
	"testing"
)

// The template: the else branch names an entry that does not
// exist. Discovery meets it (its placeholders take the else branch), but
// only the branch the real values take decides whether the render fails.
const branchy = `db=<< if eq (passwork "prod/db/postgres" "login") "app" >>ok<< else >><< passwork "staging/db/missing" >><< end >>`

func TestUnneededReferencesDoNotFailTheRender(t *testing.T) {
	p := &fakeProvider{values: map[string]string{"prod/db/postgres#login": "app"}}
	e := &Engine{Providers: map[string]Resolver{"passwork": p}}
	out, err := e.Render(context.Background(), []*Template{mustParse(t, "app.tpl", branchy)})
	if err != nil {
		t.Fatalf("Render failed on a reference in a branch not taken: %v", err)
	}
	if got := string(out.Outputs[0]); got != "db=ok" {
		t.Errorf("output %q", got)
	}
	if len(out.Warnings) != 1 || !strings.Contains(out.Warnings[0].Error(),
		`app.tpl:1:74: passwork "staging/db/missing" "password": entry "staging/db/missing" not found; available: "prod/db" (not needed by this render: in a branch it does not take)`) {
		t.Errorf("warnings %v, want the unused failed reference with its position", out.Warnings)
	}
	if len(p.batches) != 1 {
		t.Errorf("%d batches, want 1", len(p.batches))
	}
}

func TestNeededReferencesStillFail(t *testing.T) {
	for _, tc := range []struct {
		name   string
		values map[string]string
		want   []string
	}{
		{"the else branch is taken", map[string]string{"prod/db/postgres#login": "other"},
			[]string{`app.tpl:1:74: passwork "staging/db/missing" "password": entry "staging/db/missing" not found`}},
		{"the condition's own reference fails", nil,
			[]string{`app.tpl:1:14: passwork "prod/db/postgres" "login": entry "prod/db/postgres" not found`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msg := errorsOf(t, tc.values, branchy)
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error\n%s\ndoes not contain\n%s", msg, w)
				}
			}
			if strings.Contains(msg, "not needed") {
				t.Errorf("a needed reference reported as unneeded:\n%s", msg)
			}
		})
	}
}

// A failed reference evaluates to "" and the execution goes on, so
// independent failures are all listed; what follows from the empty value
// (a function failing on it) is not.
func TestEveryNeededFailureListedOnce(t *testing.T) {
	msg := errorsOf(t, map[string]string{"ok#password": "v"}, `a=<< passwork "x" >>
b=<< passwork "ok" >>
c=<< passwork "y" >>`)
	for _, w := range []string{`app.tpl:1:6: passwork "x" "password"`, `app.tpl:3:6: passwork "y" "password"`} {
		if !strings.Contains(msg, w) {
			t.Errorf("error\n%s\ndoes not contain\n%s", msg, w)
		}
	}
	msg = errorsOf(t, map[string]string{"ok#password": "v"}, `a=<< passwork "x" | mustFromJson >>`)
	if !strings.Contains(msg, `app.tpl:1:6: passwork "x" "password"`) || strings.Contains(msg, "mustFromJson") {
		t.Errorf("want the failed reference and not what its empty value caused:\n%s", msg)
	}
}
