package main

import (
	"cmp"
	"fmt"
	"time"

	"github.com/rs/zerolog"

	"github.com/injector-dev/injector/internal/cache"
	"github.com/injector-dev/injector/internal/fetch"
)

// cacheOptions are the flags of the ciphertext cache (render and run).
type cacheOptions struct {
	dir    string
	maxAge time.Duration
}

func (c *cacheOptions) register(f *flagSet) {
	f.group("Cache")
	f.stringVar(&c.dir, "cache-dir", "DIR", "", "keep the servers' encrypted responses in DIR (created 0700) and resolve from them when a server is down (default $INJECTOR_CACHE_DIR; see docs/cache.md)").complete = "dir"
	f.durationVar(&c.maxAge, "cache-max-age", 0, "serve cached responses up to D old (default $INJECTOR_CACHE_MAX_AGE, else 24h)")
}

// open opens the cache the flags or settings name and hooks it into opt;
// nil when no cache is asked for.
func (c *cacheOptions) open(s *settings, opt *fetch.Options, log zerolog.Logger) (*cache.Dir, error) {
	dir := cmp.Or(c.dir, s.CacheDir)
	if dir == "" {
		return nil, nil
	}
	maxAge := cmp.Or(c.maxAge, s.CacheMaxAge)
	if maxAge < 0 {
		return nil, usageErr(fmt.Errorf("--cache-max-age %v: must be positive", maxAge))
	}
	d, err := cache.Open(dir, cache.Options{
		MaxAge: maxAge,
		Warn:   func(msg string, err error) { log.Warn().Err(err).Msg(msg) },
		Served: func(provider string, age time.Duration, cause error) {
			log.Warn().Err(cause).Str("provider", provider).Str("age", age.Round(time.Second).String()).
				Str("max_age", cmp.Or(maxAge, cache.DefaultMaxAge).String()).
				Msg("server unavailable: resolving from the ciphertext cache")
		},
	})
	if err != nil {
		return nil, usageErr(err)
	}
	opt.Cache = d
	return d, nil
}
