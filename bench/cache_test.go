package bench

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/injector-dev/injector/internal/cache"
	"github.com/injector-dev/injector/internal/fetch"
	"github.com/injector-dev/injector/internal/fetch/passwork"
	"github.com/injector-dev/injector/internal/fetch/passwork/passworktest"
	"github.com/injector-dev/injector/internal/template"
)

// BenchmarkCache measures what the ciphertext cache (--cache-dir) costs
// and what serving from it saves, on the warm Passwork refresh of
// BenchmarkResolvePasswork: off is the floor (no cache), on adds saving
// every response and rewriting the cache file after each refresh,
// offline resolves with the server stopped, every response from the
// cache. Ratios to off are in docs/performance.md.
func BenchmarkCache(b *testing.B) {
	for _, n := range []int{100, 1000} {
		for _, mode := range []string{"off", "on", "offline"} {
			b.Run(fmt.Sprintf("secrets=%d/vaults=3/%s", n, mode), func(b *testing.B) {
				es := entries(n, 3, false)
				srv := passworktest.NewServer()
				b.Cleanup(srv.Close)
				if err := srv.Seed(es); err != nil {
					b.Fatal(err)
				}
				opt := fetch.Options{MaxAttempts: 1}
				var d *cache.Dir
				if mode != "off" {
					var err error
					if d, err = cache.Open(filepath.Join(b.TempDir(), "cache"), cache.Options{}); err != nil {
						b.Fatal(err)
					}
					opt.Cache = d
				}
				c, err := passwork.New(srv.Config(), opt)
				if err != nil {
					b.Fatal(err)
				}
				tpl := templateFor(b, "passwork", es)
				e := &template.Engine{Providers: map[string]template.Resolver{"passwork": c}}
				refresh := func() {
					if d != nil {
						d.Begin()
					}
					out, err := e.Render(context.Background(), []*template.Template{tpl})
					if err != nil {
						b.Fatal(err)
					}
					if out.Refs != n {
						b.Fatalf("resolved %d references, want %d", out.Refs, n)
					}
					if d != nil {
						if err := d.Commit(); err != nil {
							b.Fatal(err)
						}
					}
				}
				refresh() // cold: login, key unwrapping, the cache filled
				if mode == "offline" {
					srv.Close()
					refresh()
					if len(d.Served()) == 0 {
						b.Fatal("offline refresh did not use the cache")
					}
				}
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					refresh()
				}
			})
		}
	}
}
