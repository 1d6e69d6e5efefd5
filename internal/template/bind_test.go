package template

import (
	"context"
	"fmt"
	"sync"
	"testing"
)

// Parse binds only the functions a template calls; every place text/template
// lets a function be called must be found, or the execution fails with
// "not defined".
func TestEveryCallSiteIsBound(t *testing.T) {
	p := &fakeProvider{values: map[string]string{"a#password": "secret", "b#password": "x"}}
	e := &Engine{Providers: map[string]Resolver{"passwork": p}}
	tests := []struct{ text, want string }{
		{`<< upper "a" >>`, "A"},
		{`<< "a" | upper | quote >>`, `"A"`},
		{`<< (upper "a") >>`, "A"},
		{`<< printf "%s-%s" (upper "a") (lower "B") >>`, "A-b"},
		{`<< with $x := upper "a" >><< $x >><< end >>`, "A"},
		{`<< if eq (lower "A") "a" >>yes<< else if eq (upper "a") "A" >>no<< end >>`, "yes"},
		{`<< range $i, $v := (list 1 2) >><< add $v 1 >><< end >>`, "23"},
		{`<< (dict "k" (upper "v")).k >>`, "V"},
		{`<< define "x" >><< trim . >><< end >><< template "x" (cat " a " "b ") >>`, "a  b"},
		{`<< if false >><< else >><< passwork "a" | sha256sum | trunc 4 >><< end >>`, "2bb8"},
		{`<< range (list "a" "b") >><< passwork . | b64enc >>,<< end >>`, "c2VjcmV0,eA==,"},
		{`<< block "y" (upper "a") >><< . >><< end >>`, "A"},
	}
	for _, tt := range tests {
		t.Run(tt.text, func(t *testing.T) {
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

// A template whose references are all written literally is executed once
// per render: its references, in every branch, are resolved in one batch
// with no discovery execution (discovery would have needed a second round
// here, to see the branch the value of "flag" takes).
func TestStaticTemplateResolvesInOneBatch(t *testing.T) {
	p := &fakeProvider{values: map[string]string{"flag#password": "on", "a#password": "A", "b#password": "B"}}
	e := &Engine{Providers: map[string]Resolver{"passwork": p}}
	tpl := mustParse(t, "t", `<< if eq (passwork "flag") "on" >><< passwork "a" >><< else >><< passwork "b" >><< end >>`)
	if !tpl.static {
		t.Fatal("template with only literal references not seen as static")
	}
	out, err := e.Render(context.Background(), []*Template{tpl})
	if err != nil {
		t.Fatal(err)
	}
	if got := string(out.Outputs[0]); got != "A" {
		t.Errorf("got %q, want A", got)
	}
	if len(p.batches) != 1 || len(p.batches[0]) != 3 {
		t.Errorf("batches %v, want one batch of 3", p.batches)
	}
	for _, text := range []string{`<< passwork (printf "%s" "a") >>`, `<< printf "%s" passwork >>`, `<< passwork "a" "b" "c" >>`,
		`<< passwork "a" >><< range passworkEntries "vault/apps" >>x<< end >>`} {
		if mustParse(t, "t", text).static {
			t.Errorf("%s: seen as static, it computes a reference, has a malformed one or lists a selection", text)
		}
	}
}

// Executions of one template from several goroutines each see their own
// values: the provider functions answer from the execution running.
func TestConcurrentRendersOfOneTemplate(t *testing.T) {
	tpl := mustParse(t, "t", `<< passwork "a" >>`)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			want := fmt.Sprint("value-", i)
			e := &Engine{Providers: map[string]Resolver{"passwork": &fakeProvider{values: map[string]string{"a#password": want}}}}
			for range 50 {
				out, err := e.Render(context.Background(), []*Template{tpl})
				if err != nil {
					errs <- err
					return
				}
				if got := string(out.Outputs[0]); got != want {
					errs <- fmt.Errorf("got %q, want %q", got, want)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
