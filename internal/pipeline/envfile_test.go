package pipeline

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestDotenvQuoting(t *testing.T) {
	tests := []struct {
		name, in string
		want     []string // KEY=VALUE
	}{
		{"plain", "A=b", []string{"A=b"}},
		{"double quotes drop", `A="a b"`, []string{"A=a b"}},
		{"single quotes drop", `A='a b'`, []string{"A=a b"}},
		{"single quotes are literal", `A='x\ny $HOME "q"'`, []string{`A=x\ny $HOME "q"`}},
		{"double-quote escapes", `A="1\n2\t3\\4\"5\$6\q"`, []string{"A=1\n2\t3\\4\"5$6\\q"}},
		{"empty", "A=\nB=''\nC=\"\"", []string{"A=", "B=", "C="}},
		{"blanks around", "  A = b c  \t", []string{"A=b c"}},
		{"export", "export A=1\nexport\tB='2'", []string{"A=1", "B=2"}},
		{"comments", "# one\n  # two\n\nA=1 # three\nB='2' # four\nC=\"3\"#five", []string{"A=1", "B=2", "C=3"}},
		{"hash inside a word is kept", "A=a#b\nB=#c", []string{"A=a#b", "B=#c"}},
		{"blank then hash is a comment", "A= # nothing", []string{"A="}},
		{"hash inside quotes is kept", `A="a #b"` + "\nB='c #d'", []string{"A=a #b", "B=c #d"}},
		{"hash inside a template action is kept", `A=<< passwork "a #b" >> # comment`, []string{`A=<< passwork "a #b" >>`}},
		{"quotes inside an unquoted template", `A=<< passwork "prod/db" "login" >>`, []string{`A=<< passwork "prod/db" "login" >>`}},
		{"template in single quotes", `A='<< passwork "prod/db" >>'`, []string{`A=<< passwork "prod/db" >>`}},
		{"template in double quotes", `A="<< passwork \"prod/db\" >>"`, []string{`A=<< passwork "prod/db" >>`}},
		{"multi-line double quotes", "A=\"line 1\nline 2\"\nB=x", []string{"A=line 1\nline 2", "B=x"}},
		{"multi-line single quotes", "A='-----BEGIN-----\nabc\n-----END-----'", []string{"A=-----BEGIN-----\nabc\n-----END-----"}},
		{"CRLF", "A=1\r\nB='2'\r\n", []string{"A=1", "B=2"}},
		{"no variable expansion", "A=$HOME ${HOME} $$", []string{"A=$HOME ${HOME} $$"}},
		{"later wins is the pipeline's job", "A=1\nA=2", []string{"A=1", "A=2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			entries, err := parseDotenv("f.env", tt.in, delims)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, e := range entries {
				got = append(got, e.key+"="+e.value)
			}
			if strings.Join(got, "\x00") != strings.Join(tt.want, "\x00") {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestDotenvErrors(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"no equals", "OK=1\nnot a pair", "f.env:2:1: want KEY=TEMPLATE"},
		{"bare key", "A=1\n  B", "f.env:2:3: want KEY=TEMPLATE (a bare KEY"},
		{"bad key", "1A=x", `f.env:1:1: "1A" is not a variable name`},
		{"bad key chars", "A-B=x", `f.env:1:1: "A-B" is not a variable name`},
		{"unterminated double", "A=1\nB=\"abc\nC=2", "f.env:2:3: B: unterminated double-quoted value"},
		{"unterminated single", "B='abc", "f.env:1:3: B: unterminated single-quoted value"},
		{"text after quote", `A="a b" c`, "f.env:1:9: A: unexpected text after the closing quote"},
		{"naive quotes around a template", `A="<< passwork "prod/db" >>"`, `f.env:1:17: A: unexpected text after the closing quote (inside double quotes, write \" for a quote, or use single quotes)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseDotenv("f.env", tt.in, delims)
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

// The template errors of an env file name the file, line and column of
// the value, for quoted values and values after the first line too.
func TestEnvFileTemplatePositions(t *testing.T) {
	path := writeFile(t, filepath.Join(t.TempDir(), "app.env"),
		"# header\nA=ok\nB='<< passwork \"x\" '\nC=\"multi\nline\" \nD=  << passwork \"y\" \n")
	_, err := parseEnvFile(path, delims)
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{path + ":3:4:", path + ":6:5:"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if n := strings.Count(err.Error(), path+":"); n != 2 {
		t.Errorf("want both broken values reported, got %d:\n%v", n, err)
	}
}

// FuzzDotenv: no input makes the parser panic or report a position outside
// the text, and any value survives being written in single or double
// quotes and read back.
func FuzzDotenv(f *testing.F) {
	for _, seed := range []string{"A=b", "export A='x'\n# c\nB=\"1\\n2\" # d", "A=\"open", "A=<< passwork \"a #b\" >> # c", "\r\n=\n'"} {
		f.Add(seed, "value")
	}
	f.Fuzz(func(t *testing.T, text, value string) {
		if entries, err := parseDotenv("f.env", text, delims); err == nil {
			lines := strings.Count(strings.ReplaceAll(text, "\r\n", "\n"), "\n") + 1
			for _, e := range entries {
				if !validEnvKey(e.key) || e.line < 1 || e.line > lines || e.col < 1 {
					t.Fatalf("entry %+v out of the text %q", e, text)
				}
			}
		}
		if strings.ContainsAny(value, "\r") {
			return // CRLF is read as LF
		}
		if !strings.Contains(value, "'") {
			checkRoundTrip(t, "A='"+value+"'", value)
		}
		escaped := strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(value)
		checkRoundTrip(t, `A="`+escaped+`" # comment`, value)
	})
}

func checkRoundTrip(t *testing.T, text, want string) {
	t.Helper()
	entries, err := parseDotenv("f.env", text, delims)
	if err != nil || len(entries) != 1 || entries[0].value != want {
		t.Fatalf("%q: got %+v, %v; want the value %q", text, entries, err, want)
	}
}
