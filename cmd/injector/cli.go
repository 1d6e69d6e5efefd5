package main

// The command line's small layer over the standard library's flag package:
// flags may come before or after positional arguments, each command's help
// lists only its own flags, in groups, and the shell completion scripts are
// generated from the same definitions, so parsing, help and completion
// cannot disagree.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/injector-dev/injector/internal/fetch"
)

// command is one subcommand.
type command struct {
	name    string
	summary string // one line, for `injector --help`
	args    string // positionals in the usage line; "" for none
	// minArgs and maxArgs bound the number of positionals (maxArgs -1:
	// no limit). Anything else is a usage error.
	minArgs, maxArgs int
	extraHint        string // said after an unexpected positional
	// passthrough: the first positional and everything after it are a
	// command line of its own (run's CMD ARGS...), never parsed as flags.
	passthrough bool
	// argChoices are the valid positionals, when they are a fixed set
	// (completion's shells); help and completion offer them.
	argChoices []string
	about      string // optional paragraph under the usage line
	examples   []example
	// flags registers the command's flags; run runs it with the
	// positionals. Both are built fresh for each invocation by the
	// command's constructor, so they share its option variables.
	flags func(*flagSet)
	run   func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

type example struct{ comment, line string }

// flagSet is a flag.FlagSet with what help and completion need: groups,
// short aliases, argument names and what completes a flag's value.
type flagSet struct {
	fs     *flag.FlagSet
	groups []*flagGroup
	docs   map[string]*flagDoc // by long name
}

type flagGroup struct {
	title string
	flags []*flagDoc
}

// flagDoc describes one flag for help and completion.
type flagDoc struct {
	long, short string
	arg         string   // value placeholder; "" for a boolean flag
	usage       string   // what it does
	complete    string   // value completion: "file", "dir" or "" (none)
	choices     []string // value completion: a fixed set
	repeatable  bool
}

func newFlagSet(name string) *flagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are returned and printed by run
	fs.Usage = func() {}
	return &flagSet{fs: fs, docs: map[string]*flagDoc{}}
}

// group starts a group of flags; the flags registered next belong to it.
func (f *flagSet) group(title string) { f.groups = append(f.groups, &flagGroup{title: title}) }

// add registers v as --long (and -short, if given) and documents it.
func (f *flagSet) add(v flag.Value, d flagDoc) *flagDoc {
	if len(f.groups) == 0 {
		f.group("Flags")
	}
	f.fs.Var(v, d.long, d.usage)
	if d.short != "" {
		f.fs.Var(v, d.short, d.usage)
	}
	doc := &d
	g := f.groups[len(f.groups)-1]
	g.flags = append(g.flags, doc)
	f.docs[d.long] = doc
	return doc
}

func (f *flagSet) stringVar(p *string, long, arg, def, usage string) *flagDoc {
	*p = def
	return f.add((*stringValue)(p), flagDoc{long: long, arg: arg, usage: usage})
}

func (f *flagSet) boolVar(p *bool, long string, def bool, usage string) *flagDoc {
	*p = def
	return f.add((*boolValue)(p), flagDoc{long: long, usage: usage})
}

func (f *flagSet) listVar(p *listFlag, long, arg, usage string) *flagDoc {
	return f.add(p, flagDoc{long: long, arg: arg, usage: usage, repeatable: true})
}

func (f *flagSet) durationVar(p *time.Duration, long string, def time.Duration, usage string) *flagDoc {
	*p = def
	return f.add((*durationValue)(p), flagDoc{long: long, arg: "D", usage: usage})
}

// shorthand gives the flag long the one-letter alias short.
func (f *flagSet) shorthand(long, short string) {
	d := f.docs[long]
	d.short = short
	f.fs.Var(f.fs.Lookup(long).Value, short, d.usage)
}

// parse parses args: flags may come before and after positionals, "--"
// ends the flags, and with passthrough so does the first positional. It
// returns the positionals.
func (f *flagSet) parse(args []string, passthrough bool) ([]string, error) {
	var flags, positional []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			positional = append(positional, args[i+1:]...)
			return positional, f.fs.Parse(flags)
		case len(a) > 1 && a[0] == '-':
			flags = append(flags, a)
			if f.takesValue(a) && i+1 < len(args) {
				i++
				flags = append(flags, args[i])
			}
		case passthrough:
			return args[i:], f.fs.Parse(flags)
		default:
			positional = append(positional, a)
		}
	}
	return positional, f.fs.Parse(flags)
}

// longFlagRE matches a long flag name as package flag's errors show it,
// with one dash; compiled on first use (only a flag error needs it).
var longFlagRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`(^|[ :])-([a-zA-Z][a-zA-Z0-9-]+)`) })

// flagError rewrites an error of package flag to show long flags as the
// help does, with two dashes: "flag provided but not defined: --nope".
func flagError(err error) error {
	return errors.New(longFlagRE().ReplaceAllString(err.Error(), "$1--$2"))
}

// takesValue reports whether the flag argument a ("-x", "--name") is
// followed by its value as the next argument, as package flag reads it.
func (f *flagSet) takesValue(a string) bool {
	name := strings.TrimPrefix(strings.TrimPrefix(a, "-"), "-")
	if strings.Contains(name, "=") {
		return false
	}
	fl := f.fs.Lookup(name)
	if fl == nil {
		return false // unknown: Parse reports it
	}
	b, ok := fl.Value.(interface{ IsBoolFlag() bool })
	return !ok || !b.IsBoolFlag()
}

// Value types. Package flag has these, but unexported.

type stringValue string

func (s *stringValue) Set(v string) error { *s = stringValue(v); return nil }
func (s *stringValue) String() string     { return string(*s) }

type boolValue bool

func (b *boolValue) Set(v string) error {
	switch v {
	case "true", "1":
		*b = true
	case "false", "0":
		*b = false
	default:
		return errors.New("want true or false")
	}
	return nil
}
func (b *boolValue) String() string   { return fmt.Sprint(bool(*b)) }
func (b *boolValue) IsBoolFlag() bool { return true }

// optBool is a boolean flag whose default comes from a setting read after
// the flags are parsed: or gives the flag's value when it was given.
type optBool struct{ v, set bool }

func (b *optBool) Set(s string) error {
	var v boolValue
	if err := v.Set(s); err != nil {
		return err
	}
	b.v, b.set = bool(v), true
	return nil
}
func (b *optBool) String() string   { return "" }
func (b *optBool) IsBoolFlag() bool { return true }
func (b *optBool) or(def bool) bool {
	if b.set {
		return b.v
	}
	return def
}

// listFlag is a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }

type durationValue time.Duration

func (d *durationValue) Set(s string) error {
	v, err := time.ParseDuration(s)
	if err != nil {
		return errors.New("want a duration like 30s, 5m or 1h30m")
	}
	*d = durationValue(v)
	return nil
}
func (d *durationValue) String() string { return time.Duration(*d).String() }

// help writes the help of c: purpose, usage, flags by group, examples.
func (c *command) help(w io.Writer) {
	f := newFlagSet(c.name)
	if c.flags != nil {
		c.flags(f)
	}
	fmt.Fprintf(w, "%s\n\nUsage:\n  injector %s", upperFirst(c.summary), c.name)
	if len(f.docs) > 0 {
		fmt.Fprint(w, " [flags]")
	}
	if c.args != "" {
		fmt.Fprint(w, " "+c.args)
	}
	fmt.Fprintln(w)
	if c.about != "" {
		fmt.Fprintf(w, "\n%s\n", strings.TrimSpace(c.about))
	}
	// One column for the flag names, as wide as the widest that fits.
	left := func(d *flagDoc) string {
		s := "    "
		if d.short != "" {
			s = "-" + d.short + ", "
		}
		s += "--" + d.long
		if d.arg != "" {
			s += " " + d.arg
		}
		return s
	}
	width := 0
	for _, g := range f.groups {
		for _, d := range g.flags {
			if n := len(left(d)); n <= 30 && n > width {
				width = n
			}
		}
	}
	for _, g := range f.groups {
		fmt.Fprintf(w, "\n%s:\n", g.title)
		for _, d := range g.flags {
			text := d.usage
			if def := f.fs.Lookup(d.long).DefValue; def != "" && def != "false" && def != "0s" {
				text += " (default " + def + ")"
			}
			l := left(d)
			pad := width - len(l)
			lines := wrap(text, 78-4-width)
			if pad < 0 {
				fmt.Fprintf(w, "  %s\n", l)
				l, pad = "", width
			}
			fmt.Fprintf(w, "  %s%s  %s\n", l, strings.Repeat(" ", pad), lines[0])
			for _, line := range lines[1:] {
				fmt.Fprintf(w, "  %s  %s\n", strings.Repeat(" ", width), line)
			}
		}
	}
	fmt.Fprintf(w, "\n  -h, --help%s  show this help\n", strings.Repeat(" ", max(width-10, 0)))
	if len(c.examples) > 0 {
		fmt.Fprintln(w, "\nExamples:")
		for i, e := range c.examples {
			if i > 0 {
				fmt.Fprintln(w)
			}
			if e.comment != "" {
				fmt.Fprintf(w, "  # %s\n", e.comment)
			}
			fmt.Fprintf(w, "  %s\n", e.line)
		}
	}
}

// wrap breaks text into lines of at most width characters, at spaces.
func wrap(text string, width int) []string {
	width = max(width, 30)
	var lines []string
	line := ""
	for _, word := range strings.Fields(text) {
		if line != "" && len(line)+1+len(word) > width {
			lines = append(lines, line)
			line = ""
		}
		if line != "" {
			line += " "
		}
		line += word
	}
	return append(lines, line)
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// mainHelp writes `injector --help`: what injector is and its commands.
func mainHelp(w io.Writer, cmds []*command) {
	fmt.Fprint(w, `injector renders secrets from Passwork, Passbolt and PassAgent into files
and process environments. Templates use << >>:
  DB_PASSWORD=<< passwork "prod/db/postgres" "password" >>

Usage:
  injector COMMAND [flags] [ARGS...]

Commands:
`)
	for _, c := range cmds {
		fmt.Fprintf(w, "  %-11s %s\n", c.name, c.summary)
	}
	fmt.Fprint(w, `
Run 'injector COMMAND --help' for a command's flags and examples.
Settings (PASSWORK_*, PASSBOLT_*, PASSAGENT_*, INJECTOR_*) come from the
environment, each also as NAME_FILE; see README.md. Exit codes: 0 success,
1 a template or secret failed (probe: no 2xx answer), 2 usage or
configuration error; run passes
the command's own code through (126 not executable, 127 not found, 128+N
killed by signal N).
`)
}

// suggest returns the name in names closest to s, if it is close enough
// to be a likely typo.
func suggest(s string, names []string) string {
	best, bestDist := "", 3
	for _, n := range names {
		if d := fetch.EditDistance(s, n); d < bestDist {
			best, bestDist = n, d
		}
	}
	return best
}

// checkArgs enforces the command's positionals.
func (c *command) checkArgs(args []string) error {
	switch {
	case len(args) < c.minArgs:
		return fmt.Errorf("missing %s", c.args)
	case c.maxArgs >= 0 && len(args) > c.maxArgs:
		extra := args[c.maxArgs:]
		msg := fmt.Sprintf("unexpected arguments %q after %s", extra, c.args)
		if c.maxArgs == 0 {
			msg = fmt.Sprintf("unexpected arguments %q: %s takes none", extra, c.name)
		}
		if c.extraHint != "" {
			msg += "; " + c.extraHint
		}
		return errors.New(msg)
	}
	for _, a := range args {
		if c.argChoices != nil && !slices.Contains(c.argChoices, a) {
			return fmt.Errorf("%q: want one of %s", a, strings.Join(c.argChoices, ", "))
		}
	}
	return nil
}
