package pipeline

import (
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"

	"github.com/injector-dev/injector/internal/render"
	"github.com/injector-dev/injector/internal/template"
)

// parseFileSpec parses SRC:DST[:MODE].
func parseFileSpec(s string) (File, error) {
	parts := strings.Split(s, ":")
	if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || parts[1] == "" {
		return File{}, fmt.Errorf("template %q: want SRC:DST[:MODE]", s)
	}
	f := File{Src: parts[0], Dst: parts[1], Mode: render.DefaultMode}
	if len(parts) == 3 && f.Dst == Stdout {
		return File{}, fmt.Errorf("template %q: stdout (-) has no file mode; drop :%s", s, parts[2])
	}
	if len(parts) == 3 {
		m, err := strconv.ParseUint(parts[2], 8, 32)
		if err != nil || m > 0o777 {
			return File{}, fmt.Errorf("template %q: mode %q is not an octal permission like 0600", s, parts[2])
		}
		f.Mode = fs.FileMode(m)
	}
	return f, nil
}

func validEnvKey(k string) bool {
	if k == "" {
		return false
	}
	for i, c := range k {
		if !(c == '_' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// OwnSetting reports whether an environment variable configures injector
// itself (INJECTOR_*, or a provider's PASSWORK_*, PASSBOLT_*, PASSAGENT_*).
// Those are never passed to the child: the application should get its
// secrets, not the keys to every secret.
func OwnSetting(key string) bool {
	for _, p := range []string{"INJECTOR_", "PASSWORK_", "PASSBOLT_", "PASSAGENT_"} {
		if strings.HasPrefix(key, p) {
			return true
		}
	}
	return false
}

// childEnv splits the inherited environment into what the child keeps and
// the variables that are templates themselves, dropping those for which
// own is true. A value is a template only when it calls a provider
// (template.CallsProvider) and its name is a valid variable name (an
// exported bash function, BASH_FUNC_f%%, never is): everything else, like
// "a << b" or a heredoc, passes through byte for byte. With templates
// false nothing inherited is a template. A key inherited twice keeps its
// first value, the one getenv(3) returns.
func childEnv(vars []string, delims [2]string, own func(key string) bool, templates bool) (keep []string, templated []envVar, err error) {
	seen := map[string]bool{}
	for _, kv := range vars {
		k, v, _ := strings.Cut(kv, "=")
		if seen[k] {
			continue
		}
		seen[k] = true
		switch {
		case own(k):
		case templates && validEnvKey(k) && template.CallsProvider(v, delims):
			tpl, err := template.Parse(template.Source{Name: "$" + k}, v, delims)
			if err != nil {
				return nil, nil, err
			}
			templated = append(templated, envVar{key: k, tpl: tpl})
		default:
			keep = append(keep, kv)
		}
	}
	sort.Slice(templated, func(i, j int) bool { return templated[i].key < templated[j].key })
	return keep, templated, nil
}

// withoutKeys returns env without the variables named in vars, so that a
// templated variable replaces an inherited one instead of following it:
// getenv(3), Go and Node all return the first of two definitions.
func withoutKeys(env []string, vars []envVar) []string {
	drop := map[string]bool{}
	for _, v := range vars {
		drop[v.key] = true
	}
	var out []string
	for _, kv := range env {
		if k, _, _ := strings.Cut(kv, "="); !drop[k] {
			out = append(out, kv)
		}
	}
	return out
}

// dedupeEnv keeps the last definition of each key: later flags override
// earlier ones and the inherited environment, as in env(1).
func dedupeEnv(vars []envVar) []envVar {
	last := map[string]int{}
	for i, e := range vars {
		last[e.key] = i
	}
	var out []envVar
	for i, e := range vars {
		if last[e.key] == i {
			out = append(out, e)
		}
	}
	return out
}
