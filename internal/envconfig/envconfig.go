// Package envconfig fills settings structs (fields tagged for
// github.com/caarlos0/env) from the environment, where every setting NAME
// may also be given as NAME_FILE: the path of a file holding the value, as
// Kubernetes Secrets and Docker secrets are mounted.
package envconfig

import (
	"fmt"
	"os"
	"strings"

	"github.com/caarlos0/env/v11"
)

// Load fills cfg (a pointer to a struct with env tags) from vars, an
// environment like os.Environ(), with NAME_FILE support.
func Load(cfg any, vars []string) error {
	m, err := environ(cfg, vars)
	if err != nil {
		return err
	}
	if err := env.ParseWithOptions(cfg, env.Options{Environment: m}); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	return nil
}

// environ returns vars as a map with every NAME_FILE variable of a
// declared setting replaced by the file's content under NAME. Setting both
// NAME and NAME_FILE is an error: which one wins would be a guess.
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
	for _, p := range params {
		path, ok := m[p.Key+"_FILE"]
		if !ok || path == "" {
			continue
		}
		if _, both := m[p.Key]; both {
			return nil, fmt.Errorf("config: both %s and %s_FILE are set; set one", p.Key, p.Key)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			// The path is not secret; the content would be.
			return nil, fmt.Errorf("config: %s_FILE: %w", p.Key, err)
		}
		m[p.Key] = strings.TrimRight(string(b), "\r\n")
	}
	return m, nil
}
