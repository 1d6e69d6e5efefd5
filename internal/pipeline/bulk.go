package pipeline

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/injector-dev/injector/internal/fetch"
	"github.com/injector-dev/injector/internal/template"
)

// Naming rules for --env-from: how an entry's name becomes a variable name.
const (
	// NamingInjector upper-cases the name, turns every character outside
	// [A-Z0-9_] into "_" and puts "_" before a leading digit; a custom
	// field exports as ENTRY_FIELD.
	NamingInjector = "injector"
	// NamingPassworkCLI is passwork-cli exec's rule: case is kept, every
	// character outside [A-Za-z0-9] becomes "_", and "P_" goes before a
	// name that does not start with a letter; a custom field exports
	// under its own name alone.
	NamingPassworkCLI = "passwork-cli"
)

// Namings are the values --env-naming takes.
var Namings = []string{NamingInjector, NamingPassworkCLI}

// bulk is the --env-from part of a pipeline: the selections and how their
// entries become variables.
type bulk struct {
	sels     []fetch.Selector
	specs    []string // as written, for messages: "passwork:prod/app"
	prefix   string
	naming   string
	override bool            // an explicit variable may replace a bulk one
	allow    map[string]bool // dangerous names allowed by the operator
}

// newBulk parses the --env-from settings of cfg.
func newBulk(cfg Config) (*bulk, []error) {
	b := &bulk{prefix: cfg.EnvPrefix, naming: cfg.EnvNaming, override: cfg.EnvOverride, allow: map[string]bool{}}
	var errs []error
	if b.naming == "" {
		b.naming = NamingInjector
	}
	if !slices.Contains(Namings, b.naming) {
		errs = append(errs, usageError{fmt.Errorf("--env-naming %q: want one of %s", b.naming, strings.Join(Namings, ", "))})
	}
	if b.prefix != "" && !validEnvKey(b.prefix) {
		errs = append(errs, usageError{fmt.Errorf("--env-prefix %q: want letters, digits and _, not starting with a digit", b.prefix)})
	}
	for _, n := range cfg.EnvAllow {
		if !validEnvKey(n) {
			errs = append(errs, usageError{fmt.Errorf("--env-allow %q: want a variable name", n)})
		}
		b.allow[n] = true
	}
	for _, spec := range cfg.EnvFrom {
		provider, selection, ok := strings.Cut(spec, ":")
		if !ok || !slices.Contains(template.Providers, provider) {
			errs = append(errs, usageError{fmt.Errorf("--env-from %q: want PROVIDER:SELECTION, PROVIDER one of %s, like passwork:prod/app, passwork:prod/app/** or passwork:tag:db", spec, strings.Join(template.Providers, ", "))})
			continue
		}
		sel, err := fetch.ParseSelector(provider, selection)
		if err != nil {
			errs = append(errs, usageError{fmt.Errorf("--env-from %q: %w", spec, err)})
			continue
		}
		if slices.Contains(b.sels, sel) {
			continue
		}
		b.sels = append(b.sels, sel)
		b.specs = append(b.specs, provider+":"+sel.String())
	}
	return b, errs
}

// bulkVar is one variable from --env-from, with where it came from.
type bulkVar struct {
	key, value string
	source     string // `passwork:prod/app entry "prod/app/db"` (names, never values)
}

// vars names the variables of the listings (index-aligned with b.sels).
// explicit are the keys of the --env, --env-file and templated inherited
// variables. It returns the bulk variables sorted by key, the explicit
// keys they give way to (override), and every problem at once: empty
// selections, names no rule can make, collisions, dangerous names.
func (b *bulk) vars(listings []fetch.Listing, explicit []string) ([]bulkVar, error) {
	var errs template.Errors
	byKey := map[string]bulkVar{}
	seen := map[string]bool{} // provider + entry id: an entry two selections share
	for i, l := range listings {
		if len(l.Entries) == 0 {
			errs = append(errs, fmt.Errorf("--env-from %s: no entries found%s", b.specs[i], emptyHint(b.sels[i])))
			continue
		}
		for _, e := range l.Entries {
			if id := b.sels[i].Provider + "\x00" + e.ID; e.ID != "" {
				if seen[id] {
					continue
				}
				seen[id] = true
			}
			src := fmt.Sprintf("%s entry %q", b.specs[i], e.Path)
			for _, f := range e.Fields {
				if f.Name != "password" && !f.Custom {
					continue
				}
				key, err := b.name(e.Name, f)
				fsrc := src
				if f.Custom {
					fsrc += fmt.Sprintf(" field %q", f.Name)
				}
				if err != nil {
					errs = append(errs, fmt.Errorf("--env-from %s: %w", fsrc, err))
					continue
				}
				if prev, ok := byKey[key]; ok {
					errs = append(errs, fmt.Errorf("--env-from: %s from %s collides with %s; rename one, select less, or use --env-prefix", key, fsrc, prev.source))
					continue
				}
				byKey[key] = bulkVar{key: key, value: f.Value, source: fsrc}
			}
		}
	}
	for _, k := range explicit {
		if v, ok := byKey[k]; ok {
			if b.override {
				delete(byKey, k)
				continue
			}
			errs = append(errs, fmt.Errorf("--env-from: %s from %s is also set explicitly (--env, --env-file or an inherited template); --env-override lets the explicit value win", k, v.source))
		}
	}
	for _, v := range byKey {
		if why := dangerous(v.key); why != "" && !b.allow[v.key] {
			errs = append(errs, fmt.Errorf("--env-from: %s from %s refused: it %s; entry names come from the server, so such a name is allowed only by --env-allow %s", v.key, v.source, why, v.key))
		}
	}
	if len(errs) > 0 {
		sort.SliceStable(errs, func(i, j int) bool { return errs[i].Error() < errs[j].Error() })
		return nil, errs
	}
	out := make([]bulkVar, 0, len(byKey))
	for _, v := range byKey {
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].key < out[j].key })
	return out, nil
}

func emptyHint(sel fetch.Selector) string {
	if sel.Tag == "" && !sel.Recursive {
		return fmt.Sprintf(" directly in it (%s/** includes its subfolders)", sel.Path)
	}
	return ""
}

// name is the variable name of field f of the entry named entry.
func (b *bulk) name(entry string, f fetch.Field) (string, error) {
	var key string
	switch b.naming {
	case NamingPassworkCLI:
		n := entry
		if f.Custom {
			n = f.Name // passwork-cli names a custom field by itself
		}
		if n == "" {
			return "", errors.New("empty name: no variable name can be made from it")
		}
		key = b.prefix + passworkCLIName(n)
	default:
		if entry == "" || f.Custom && f.Name == "" {
			return "", errors.New("empty name: no variable name can be made from it")
		}
		key = sanitize(entry)
		if f.Custom {
			key += "_" + sanitize(f.Name)
		}
		key = b.prefix + key
		if key[0] >= '0' && key[0] <= '9' {
			key = "_" + key
		}
	}
	return key, nil
}

// sanitize is the injector rule: upper case, every character outside
// [A-Z0-9_] becomes "_".
func sanitize(s string) string {
	var b strings.Builder
	for _, r := range strings.ToUpper(s) {
		if r == '_' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}

// passworkCLIName is passwork-cli's rule (see NamingPassworkCLI).
func passworkCLIName(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	out := b.String()
	if c := out[0]; !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z') {
		out = "P_" + out
	}
	return out
}

// dangerous says why a variable must not be set from a name the server
// chose, or "" when it may. The names are those that change which code
// the child runs, loads or trusts, or how injector itself runs.
func dangerous(key string) string {
	if OwnSetting(key) {
		return "is one of injector's own settings"
	}
	if why, ok := dangerousNames()[key]; ok {
		return why
	}
	for _, p := range dangerousPrefixes {
		if strings.HasPrefix(key, p.prefix) {
			return p.why
		}
	}
	switch strings.ToUpper(key) {
	case "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "FTP_PROXY":
		return "routes the child's network traffic"
	}
	return ""
}

var dangerousNames = sync.OnceValue(func() map[string]string {
	return map[string]string{
		"PATH":                "chooses which programs the child runs",
		"HOME":                "chooses where the child reads its configuration",
		"SHELL":               "chooses the shell the child starts",
		"TMPDIR":              "chooses where the child writes temporary files",
		"PWD":                 "misleads the child about its directory",
		"USER":                "misleads the child about its user",
		"LOGNAME":             "misleads the child about its user",
		"IFS":                 "changes how shells split words",
		"ENV":                 "names a file shells run at start",
		"BASH_ENV":            "names a file bash runs at start",
		"CDPATH":              "changes where shells cd",
		"PS4":                 "is evaluated by shells",
		"SHELLOPTS":           "sets shell options",
		"BASHOPTS":            "sets shell options",
		"PROMPT_COMMAND":      "is run by interactive shells",
		"GLOBIGNORE":          "changes shell globbing",
		"GCONV_PATH":          "loads code into C programs",
		"LOCPATH":             "changes how C programs load locales",
		"NLSPATH":             "changes how C programs load messages",
		"HOSTALIASES":         "changes name resolution",
		"RES_OPTIONS":         "changes name resolution",
		"LOCALDOMAIN":         "changes name resolution",
		"GLIBC_TUNABLES":      "changes how the C library runs",
		"NODE_OPTIONS":        "adds options and code to Node.js",
		"NODE_PATH":           "chooses where Node.js loads modules",
		"NODE_EXTRA_CA_CERTS": "changes which servers Node.js trusts",
		"PERL5LIB":            "chooses where Perl loads modules",
		"PERL5OPT":            "adds options and code to Perl",
		"PERLLIB":             "chooses where Perl loads modules",
		"RUBYOPT":             "adds options and code to Ruby",
		"RUBYLIB":             "chooses where Ruby loads code",
		"GEM_HOME":            "chooses where Ruby loads gems",
		"GEM_PATH":            "chooses where Ruby loads gems",
		"CLASSPATH":           "chooses where Java loads classes",
		"JAVA_TOOL_OPTIONS":   "adds options and agents to Java",
		"_JAVA_OPTIONS":       "adds options and agents to Java",
		"JDK_JAVA_OPTIONS":    "adds options and agents to Java",
		"GODEBUG":             "changes how Go programs run",
		"SSL_CERT_FILE":       "changes which servers the child trusts",
		"SSL_CERT_DIR":        "changes which servers the child trusts",
		"CURL_CA_BUNDLE":      "changes which servers the child trusts",
		"REQUESTS_CA_BUNDLE":  "changes which servers the child trusts",
		"EDITOR":              "names a program the child may run",
		"VISUAL":              "names a program the child may run",
		"PAGER":               "names a program the child may run",
		"BROWSER":             "names a program the child may run",
		"SSH_ASKPASS":         "names a program the child may run",
		"LESSOPEN":            "names a program the child may run",
		"PYTHONPATH":          "chooses where Python loads modules",
	}
})

var dangerousPrefixes = []struct{ prefix, why string }{
	{"LD_", "changes how the child is linked and loaded"},
	{"DYLD_", "changes how the child is linked and loaded"},
	{"MALLOC_", "changes how the C library runs"},
	{"PYTHON", "changes how Python runs (PYTHONPATH, PYTHONSTARTUP…)"},
	{"BASH_FUNC_", "defines a bash function"},
	{"GIT_", "changes how git runs (GIT_SSH_COMMAND…)"},
	{"LC_", "changes the child's locale"},
	{"LANG", "changes the child's locale"},
}
