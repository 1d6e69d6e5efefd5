package pipeline

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/injector-dev/injector/internal/fetch"
	"github.com/injector-dev/injector/internal/template"
)

// envOf builds a pipeline and refreshes it, returning the child's env.
func envOf(t *testing.T, cfg Config) []string {
	t.Helper()
	cfg.Delims, cfg.Providers = delims, fakeSecrets()
	p, problems := New(cfg)
	if len(problems) > 0 {
		t.Fatal(problems)
	}
	out, err := p.Refresh(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return out.Env
}

// Every key reaches the child once, and a templated value replaces the
// inherited one: getenv returns the first of two, so FOO=plain followed by
// FOO=secret ran the app on the placeholder.
func TestTemplatedValueReplacesInherited(t *testing.T) {
	env := envOf(t, Config{
		Environ: []string{"FOO=plain", "HOME=/root", "BAR=<< passwork \"inherited\" >>", "HOME=/second", "DB_PASSWORD=changeme"},
		Env:     []string{"FOO=<< passwork \"flag\" >>", "BAR=<< passwork \"flag-bar\" >>", "DB_PASSWORD=<< passwork \"db\" >>"},
	})
	want := []string{"HOME=/root", "FOO=flag/password", "BAR=flag-bar/password", "DB_PASSWORD=db/password"}
	if !slices.Equal(env, want) {
		t.Errorf("env = %q, want %q", env, want)
	}
}

// Inherited values are templates only when they call a provider; every
// other value passes through byte for byte, and a broken template names
// its variable.
func TestInheritedValuesPassThroughUnlessTheyCallAProvider(t *testing.T) {
	plain := []string{
		"MSG=a << b",
		"SETUP=cat <<EOF > x",
		"BASH_FUNC_f%%=() {  cat <<EOF\n<< passwork \"x\" >>\nEOF\n}",
		"QUOTED=<< \"t\" >>",
		"SHIFT=echo $((1 << 3 >> 1))",
		"EMPTY=",
	}
	env := envOf(t, Config{Environ: append(slices.Clone(plain), "DB=<< passwork \"db\" >>")})
	if want := append(slices.Clone(plain), "DB=db/password"); !slices.Equal(env, want) {
		t.Errorf("env = %q, want %q", env, want)
	}

	_, problems := New(Config{Environ: []string{"OK=a << b", "BROKEN=<< passwork \"db\" "}, Delims: delims, Providers: fakeSecrets()})
	if len(problems) != 1 || !strings.Contains(problems[0].Error(), "$BROKEN") {
		t.Errorf("problems = %v, want one naming $BROKEN", problems)
	}

	// Opted out: nothing inherited is a template.
	all := append(slices.Clone(plain), "DB=<< passwork \"db\" >>", "BROKEN=<< passwork \"db\" ")
	if env := envOf(t, Config{Environ: all, NoEnvTemplates: true}); !slices.Equal(env, all) {
		t.Errorf("with NoEnvTemplates env = %q, want %q", env, all)
	}
}

// The same file named twice, however spelled, is rejected before anything
// is resolved.
func TestDuplicateDestinationsRejected(t *testing.T) {
	dir := t.TempDir()
	a := writeFile(t, filepath.Join(dir, "a.tpl"), `a=<< passwork "a" >>`)
	b := writeFile(t, filepath.Join(dir, "b.tpl"), `b=<< passwork "b" >>`)
	if err := os.Mkdir(filepath.Join(dir, "d"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(dir, "d"), filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	for _, second := range []string{"d/out", "d/./out", filepath.Join(dir, "d/out"), "link/out", "d/../d/out", "new/../d/out"} {
		calls := 0
		p := fakeSecrets()["passwork"]
		counting := template.ResolverFunc(func(ctx context.Context, refs []fetch.Ref) ([]fetch.Result, error) {
			calls++
			return p.Resolve(ctx, refs)
		})
		_, problems := New(Config{Templates: []string{a + ":d/out", b + ":" + second}, Delims: delims, Providers: map[string]template.Resolver{"passwork": counting}})
		if len(problems) != 1 || !strings.Contains(problems[0].Error(), "is the same file as d/out, the destination of template "+a) {
			t.Errorf("%s: problems = %v", second, problems)
		}
		if calls != 0 {
			t.Errorf("%s: resolved before rejecting", second)
		}
	}
	// Distinct files are fine; check writes nothing, so /dev/null twice is too.
	if _, problems := New(Config{Templates: []string{a + ":d/out", b + ":d/out2"}, Delims: delims}); len(problems) > 0 {
		t.Error(problems)
	}
	if _, problems := New(Config{Templates: []string{a + ":/dev/null", b + ":/dev/null", a + ":-"}, Delims: delims, NoWrite: true}); len(problems) > 0 {
		t.Error(problems)
	}
}

// A destination that is not a regular file is rejected at once, saying
// what it is.
func TestDestinationKindCheckedUpFront(t *testing.T) {
	dir := t.TempDir()
	a := writeFile(t, filepath.Join(dir, "a.tpl"), `a`)
	if err := os.Symlink("/dev/stdout", filepath.Join(dir, "stdout")); err != nil {
		t.Fatal(err)
	}
	for dst, want := range map[string]string{
		filepath.Join(dir, "stdout"): "symbolic link (to /dev/stdout)",
		os.DevNull:                   "character device",
		dir:                          "destination is a directory",
		dir + "/":                    "names a directory",
	} {
		_, problems := New(Config{Templates: []string{a + ":" + dst}, Delims: delims})
		if len(problems) != 1 || !strings.Contains(problems[0].Error(), want) {
			t.Errorf("%s: problems = %v, want %q", dst, problems, want)
		}
	}
}

// "-" prints the template, after every file is written; only where the
// command prints (Stdout set), with no mode.
func TestStdoutDestination(t *testing.T) {
	dir := t.TempDir()
	a := writeFile(t, filepath.Join(dir, "a.tpl"), `a=<< passwork "a" >>`+"\n")
	b := writeFile(t, filepath.Join(dir, "b.tpl"), `b=<< passwork "b" >>`)
	var out bytes.Buffer
	p, problems := New(Config{Templates: []string{a + ":-", b + ":" + filepath.Join(dir, "b.out"), b + ":-"}, Delims: delims, Providers: fakeSecrets(), Stdout: &out})
	if len(problems) > 0 {
		t.Fatal(problems)
	}
	res, err := p.Refresh(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if out.String() != "a=a/password\nb=b/password" || !slices.Equal(res.Changed, []string{filepath.Join(dir, "b.out")}) {
		t.Errorf("stdout %q, changed %v", out.String(), res.Changed)
	}

	if _, problems := New(Config{Templates: []string{a + ":-"}, Delims: delims}); len(problems) != 1 || !strings.Contains(problems[0].Error(), "only for injector render without --interval") {
		t.Errorf("without Stdout: %v", problems)
	}
	if _, problems := New(Config{Templates: []string{a + ":-:0644"}, Delims: delims, Stdout: &out}); len(problems) != 1 || !strings.Contains(problems[0].Error(), "no file mode") {
		t.Errorf("with a mode: %v", problems)
	}

	// A failed write prints nothing.
	out.Reset()
	blocker := filepath.Join(dir, "later-a-file")
	p, problems = New(Config{Templates: []string{a + ":-", b + ":" + filepath.Join(blocker, "under")}, Delims: delims, Providers: fakeSecrets(), Stdout: &out})
	if len(problems) > 0 {
		t.Fatal(problems)
	}
	writeFile(t, blocker, "x")
	if _, err := p.Refresh(context.Background()); err == nil || out.Len() > 0 {
		t.Errorf("err = %v, printed %q", err, out.String())
	}
}
