package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"fmt"
	"io/fs"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/injector-dev/injector/internal/render"
	"github.com/injector-dev/injector/internal/template"
)

// fileSpec is one -t SRC:DST[:MODE] template.
type fileSpec struct {
	src, dst string
	mode     fs.FileMode
	tpl      *template.Template
}

// envSpec is one environment variable whose value is a template.
type envSpec struct {
	key string
	tpl *template.Template
}

// pipeline is everything one command renders: template files and env
// templates, with the engine that resolves their secrets. One Refresh is one
// full resolve-and-render cycle; daemon mode calls it every interval.
type pipeline struct {
	engine *template.Engine
	files  []fileSpec
	envs   []envSpec
	owner  *render.Owner // nil: files belong to injector's user
	// baseEnv is the environment the child inherits, without the
	// templated variables and without injector's own credentials.
	baseEnv []string

	lastEnv string // hash of the last rendered env, to detect changes
}

// outcome is what one Refresh produced.
type outcome struct {
	Changed    []string // destinations written because their content changed
	Env        []string // the child's full environment
	EnvChanged bool
	Secrets    []string // every resolved value, for masking
	Refs       int
	outputs    [][]byte // rendered content, files then env, for dev's display
}

// parseFileSpec parses SRC:DST[:MODE].
func parseFileSpec(s string) (fileSpec, error) {
	parts := strings.Split(s, ":")
	if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || parts[1] == "" {
		return fileSpec{}, fmt.Errorf("template %q: want SRC:DST[:MODE]", s)
	}
	fsp := fileSpec{src: parts[0], dst: parts[1], mode: render.DefaultMode}
	if len(parts) == 3 {
		m, err := strconv.ParseUint(parts[2], 8, 32)
		if err != nil || m > 0o777 {
			return fileSpec{}, fmt.Errorf("template %q: mode %q is not an octal permission like 0600", s, parts[2])
		}
		fsp.mode = fs.FileMode(m)
	}
	return fsp, nil
}

// parseEnvFile reads KEY=TEMPLATE lines. Blank lines and lines starting
// with # are skipped; a leading "export " is allowed so the file can also
// be sourced by a shell.
func parseEnvFile(path string, delims [2]string) ([]envSpec, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []envSpec
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		indent := len(line) - len(strings.TrimLeft(line, " \t"))
		rest := strings.TrimPrefix(line[indent:], "export ")
		col := indent + (len(line[indent:]) - len(rest)) + 1
		key, val, ok := strings.Cut(rest, "=")
		if !ok || !validEnvKey(key) {
			return nil, fmt.Errorf("%s:%d:%d: want KEY=TEMPLATE", path, n, col)
		}
		tpl, err := template.Parse(template.Source{Name: path, Line: n, Col: col + len(key) + 1}, val, delims)
		if err != nil {
			return nil, err
		}
		out = append(out, envSpec{key: key, tpl: tpl})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return out, nil
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

// templates returns every template in a fixed order: files, then env.
func (p *pipeline) templates() []*template.Template {
	var out []*template.Template
	for _, f := range p.files {
		out = append(out, f.tpl)
	}
	for _, e := range p.envs {
		out = append(out, e.tpl)
	}
	return out
}

// Refresh resolves every secret, writes the files whose content changed
// (all or nothing) and builds the child's environment. On error nothing is
// written and the previous output stays in place.
func (p *pipeline) Refresh(ctx context.Context) (outcome, error) {
	out, err := p.engine.Render(ctx, p.templates())
	if err != nil {
		return outcome{}, err
	}
	var files []render.File
	for i, f := range p.files {
		files = append(files, render.File{Path: f.dst, Content: out.Outputs[i], Mode: f.mode, Owner: p.owner})
	}
	changed, err := render.WriteAll(files)
	if err != nil {
		// Paths and OS errors only; nothing to scrub.
		return outcome{Changed: changed}, err
	}
	// Never nil: a nil Env makes os/exec pass injector's own environment,
	// credentials included, to the child.
	env := make([]string, 0, len(p.baseEnv)+len(p.envs))
	env = append(env, p.baseEnv...)
	h := sha256.New()
	for i, e := range p.envs {
		v := string(out.Outputs[len(p.files)+i])
		env = append(env, e.key+"="+v)
		fmt.Fprintf(h, "%d:%s=%d:%s;", len(e.key), e.key, len(v), v)
	}
	sum := string(h.Sum(nil))
	envChanged := sum != p.lastEnv
	p.lastEnv = sum
	return outcome{Changed: changed, Env: env, EnvChanged: envChanged, Secrets: out.Secrets, Refs: out.Refs, outputs: out.Outputs}, nil
}

// childEnv splits the inherited environment into what the child keeps and
// the variables that are templates themselves. Injector's own settings
// (provider credentials above all) are not passed on: the application
// should get its secrets, not the keys to every secret.
func childEnv(vars []string, delims [2]string, own func(key string) bool) (keep []string, templated []envSpec, err error) {
	for _, kv := range vars {
		k, v, _ := strings.Cut(kv, "=")
		switch {
		case own(k):
		case strings.Contains(v, delims[0]):
			tpl, err := template.Parse(template.Source{Name: "$" + k}, v, delims)
			if err != nil {
				return nil, nil, err
			}
			templated = append(templated, envSpec{key: k, tpl: tpl})
		default:
			keep = append(keep, kv)
		}
	}
	sort.Slice(templated, func(i, j int) bool { return templated[i].key < templated[j].key })
	return keep, templated, nil
}
