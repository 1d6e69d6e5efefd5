package pipeline

import (
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/injector-dev/injector/internal/template"
)

// An env file (--env-file) holds KEY=TEMPLATE lines with the quoting of
// dotenv files (docker compose, python-dotenv), so one file can serve both:
//
//	# a comment
//	export DB_USER=<< passwork "prod/db/postgres" "login" >>   # comment
//	DB_PASSWORD='<< passwork "prod/db/postgres" >>'            (single quotes: literal)
//	GREETING="two words\nand a second line"                    (double quotes: escapes)
//	CERT="-----BEGIN CERTIFICATE-----
//	...
//	-----END CERTIFICATE-----"                                 (quotes may span lines)
//
// Unquoted values run to the end of the line, without surrounding blanks;
// a # after a blank starts a comment, except inside a template action.
// Single-quoted values are taken as written. Double-quoted values read the
// escapes \n \r \t \\ \" and \$; any other backslash stays as it is. There
// is no variable expansion: $VAR is kept as written (a template that could
// read injector's environment could read its credentials). README.md
// ("Env files") states the rule and how it differs from Docker's
// --env-file, which takes every line literally.

// parseEnvFile reads the env file at path and parses each value as a
// template. Template errors are all reported; a line that is not
// KEY=VALUE stops the parse, as what follows it cannot be trusted.
func parseEnvFile(path string, delims [2]string) ([]envVar, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	entries, err := parseDotenv(path, string(data), delims)
	if err != nil {
		return nil, err
	}
	var out []envVar
	var errs template.Errors
	for _, e := range entries {
		tpl, err := template.Parse(template.Source{Name: path, Line: e.line, Col: e.col}, e.value, delims)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, envVar{key: e.key, tpl: tpl})
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return out, nil
}

// dotenvEntry is one KEY=VALUE with where its value starts.
type dotenvEntry struct {
	key, value string
	line, col  int
}

// dotenv is the state of one parse: the text and where lines start, to
// turn offsets into line:col for messages.
type dotenv struct {
	name       string
	text       string
	delims     [2]string
	lineStarts []int
}

// parseDotenv parses text (named name in errors).
func parseDotenv(name, text string, delims [2]string) ([]dotenvEntry, error) {
	text = strings.ReplaceAll(text, "\r\n", "\n")
	if delims[0] == "" || delims[1] == "" {
		delims = template.DefaultDelims
	}
	d := &dotenv{name: name, text: text, delims: delims, lineStarts: []int{0}}
	for i := 0; i < len(text); i++ {
		if text[i] == '\n' {
			d.lineStarts = append(d.lineStarts, i+1)
		}
	}
	var out []dotenvEntry
	for i := 0; i < len(text); {
		e, next, err := d.entry(i)
		if err != nil {
			return nil, err
		}
		if e != nil {
			out = append(out, *e)
		}
		i = next
	}
	return out, nil
}

// pos is offset as "name:line:col".
func (d *dotenv) pos(offset int) string {
	line, col := d.lineCol(offset)
	return fmt.Sprintf("%s:%d:%d", d.name, line, col)
}

func (d *dotenv) lineCol(offset int) (int, int) {
	line := sort.Search(len(d.lineStarts), func(i int) bool { return d.lineStarts[i] > offset })
	return line, offset - d.lineStarts[line-1] + 1
}

// lineEnd is the offset of the newline ending the line at i, or len(text).
func (d *dotenv) lineEnd(i int) int {
	if n := strings.IndexByte(d.text[i:], '\n'); n >= 0 {
		return i + n
	}
	return len(d.text)
}

func (d *dotenv) skipBlanks(i, end int) int {
	for i < end && (d.text[i] == ' ' || d.text[i] == '\t') {
		i++
	}
	return i
}

// entry parses the line starting at i: nothing (blank or comment) or one
// KEY=VALUE. It returns where the next line starts.
func (d *dotenv) entry(i int) (*dotenvEntry, int, error) {
	end := d.lineEnd(i)
	j := d.skipBlanks(i, end)
	if j == end || d.text[j] == '#' {
		return nil, end + 1, nil
	}
	if rest := d.text[j:end]; strings.HasPrefix(rest, "export ") || strings.HasPrefix(rest, "export\t") {
		j = d.skipBlanks(j+len("export"), end)
	}
	k := j
	for k < end && d.text[k] != '=' && d.text[k] != ' ' && d.text[k] != '\t' {
		k++
	}
	key := d.text[j:k]
	eq := d.skipBlanks(k, end)
	if eq == end || d.text[eq] != '=' {
		hint := ""
		if validEnvKey(key) && eq == end {
			hint = " (a bare KEY, which Docker's --env-file copies from the environment, is not needed: run passes the inherited environment on)"
		}
		return nil, 0, fmt.Errorf("%s: want KEY=TEMPLATE%s", d.pos(j), hint)
	}
	if !validEnvKey(key) {
		return nil, 0, fmt.Errorf("%s: %q is not a variable name (letters, digits and _, not starting with a digit)", d.pos(j), key)
	}
	v := d.skipBlanks(eq+1, end)
	e := &dotenvEntry{key: key}
	var after int // where the text after a closing quote starts
	switch {
	case v < end && d.text[v] == '\'':
		close := strings.IndexByte(d.text[v+1:], '\'')
		if close < 0 {
			return nil, 0, fmt.Errorf("%s: %s: unterminated single-quoted value", d.pos(v), key)
		}
		e.value = d.text[v+1 : v+1+close]
		after = v + 1 + close + 1
	case v < end && d.text[v] == '"':
		value, close, err := d.doubleQuoted(v)
		if err != nil {
			return nil, 0, fmt.Errorf("%s: %s: %w", d.pos(v), key, err)
		}
		e.value, after = value, close+1
	default:
		e.value = d.unquoted(eq+1, v, end)
		e.line, e.col = d.lineCol(v)
		return e, end + 1, nil
	}
	e.line, e.col = d.lineCol(v + 1)
	// After the closing quote: blanks and an optional comment only.
	end = d.lineEnd(after)
	if t := d.skipBlanks(after, end); t < end && d.text[t] != '#' {
		return nil, 0, fmt.Errorf("%s: %s: unexpected text after the closing quote (inside double quotes, write \\\" for a quote, or use single quotes)", d.pos(t), key)
	}
	return e, end + 1, nil
}

// doubleQuoted reads the value whose opening quote is at q, with escapes,
// and returns it with the offset of the closing quote.
func (d *dotenv) doubleQuoted(q int) (string, int, error) {
	var b strings.Builder
	for i := q + 1; i < len(d.text); i++ {
		c := d.text[i]
		switch {
		case c == '"':
			return b.String(), i, nil
		case c == '\\' && i+1 < len(d.text):
			i++
			switch e := d.text[i]; e {
			case 'n':
				b.WriteByte('\n')
			case 'r':
				b.WriteByte('\r')
			case 't':
				b.WriteByte('\t')
			case '\\', '"', '$':
				b.WriteByte(e)
			default:
				b.WriteByte('\\')
				b.WriteByte(e)
			}
		default:
			b.WriteByte(c)
		}
	}
	return "", 0, fmt.Errorf("unterminated double-quoted value")
}

// unquoted is the value from v to the end of the line end: without
// trailing blanks, and cut at a comment — a # after a blank (or first,
// after blanks following the =) outside any template action.
func (d *dotenv) unquoted(afterEq, v, end int) string {
	s := d.text[v:end]
	inAction := false
	for i := 0; i < len(s); i++ {
		switch {
		case !inAction && strings.HasPrefix(s[i:], d.delims[0]):
			inAction = true
			i += len(d.delims[0]) - 1
		case inAction && strings.HasPrefix(s[i:], d.delims[1]):
			inAction = false
			i += len(d.delims[1]) - 1
		case !inAction && s[i] == '#':
			blankBefore := i > 0 && (s[i-1] == ' ' || s[i-1] == '\t') || i == 0 && v > afterEq
			if blankBefore {
				return strings.TrimRight(s[:i], " \t")
			}
		}
	}
	return strings.TrimRight(s, " \t")
}
