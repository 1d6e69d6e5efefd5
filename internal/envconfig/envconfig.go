// Package envconfig fills settings structs (fields tagged for
// github.com/caarlos0/env) from the environment, where every setting NAME
// may also be given as NAME_FILE: the path of a file holding the value, as
// Kubernetes Secrets and Docker secrets are mounted.
package envconfig

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"
)

// Load fills cfg (a pointer to a struct with env tags) from vars, an
// environment like os.Environ(), with NAME_FILE support. Every problem is
// reported at once (errors.Join), so one run shows all there is to fix.
func Load(cfg any, vars []string) error {
	m, err := environ(cfg, vars)
	if perr := env.ParseWithOptions(cfg, env.Options{Environment: m}); perr != nil {
		var agg env.AggregateError
		if !errors.As(perr, &agg) {
			return errors.Join(err, fmt.Errorf("config: %w", perr))
		}
		keys := envKeys(reflect.TypeOf(cfg))
		for _, e := range agg.Errors {
			err = errors.Join(err, explain(e, keys))
		}
	}
	return err
}

// explain rewrites the library's "parse error on field "HTTPTimeout"" to
// name the variable the user set and what it should hold.
func explain(err error, keys map[string][]string) error {
	var pe env.ParseError
	if !errors.As(err, &pe) || len(keys[pe.Name]) != 1 {
		return fmt.Errorf("config: %w", err)
	}
	want := pe.Type.String()
	switch pe.Type {
	case reflect.TypeOf(time.Duration(0)):
		want = "a duration like 30s, 5m or 1h30m"
	case reflect.TypeOf(0):
		want = "a whole number"
	case reflect.TypeOf(false):
		want = "true or false"
	}
	return fmt.Errorf("config: %s: want %s (%w)", keys[pe.Name][0], want, pe.Err)
}

// envKeys maps the names of t's fields (a struct or a pointer to one, and
// the structs in it) to their env keys.
func envKeys(t reflect.Type) map[string][]string {
	keys := map[string][]string{}
	var walk func(reflect.Type)
	walk = func(t reflect.Type) {
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct {
			return
		}
		for i := range t.NumField() {
			f := t.Field(i)
			if k, _, _ := strings.Cut(f.Tag.Get("env"), ","); k != "" {
				keys[f.Name] = append(keys[f.Name], k)
			} else {
				walk(f.Type)
			}
		}
	}
	walk(t)
	return keys
}

// environ returns vars as a map with every NAME_FILE variable of a
// declared setting replaced by the file's content under NAME. Setting both
// NAME and NAME_FILE is an error: which one wins would be a guess. The map
// holds every setting that could be read, with the errors of the others.
func environ(cfg any, vars []string) (map[string]string, error) {
	m := make(map[string]string, len(vars))
	for _, kv := range vars {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	params, err := env.GetFieldParams(cfg)
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, p := range params {
		path, ok := m[p.Key+"_FILE"]
		if !ok || path == "" {
			continue
		}
		if _, both := m[p.Key]; both {
			errs = append(errs, fmt.Errorf("config: both %s and %s_FILE are set; set one", p.Key, p.Key))
			continue
		}
		b, err := os.ReadFile(path)
		if err != nil {
			// The path is not secret; the content would be.
			errs = append(errs, fmt.Errorf("config: %s_FILE: %w", p.Key, err))
			continue
		}
		m[p.Key] = strings.TrimRight(string(b), "\r\n")
	}
	return m, errors.Join(errs...)
}
