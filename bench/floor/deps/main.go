// Command deps is the start-up floor of injector's chosen dependencies: a
// hello-world program that links, and so initialises, the libraries the
// injector binary links (sprig, client_golang with its collectors and HTTP
// handler, gopenpgp, zerolog, caarlos0/env, golang.org/x/crypto, the JSON
// v2 decoder, net/http) and does nothing with them. With the argument
// "wait" it then waits for stdin to close, so the memory of a process that
// only initialised these libraries can be read from /proc. With "use" it
// calls each library the way injector does; that path is there for the
// linker, which then keeps the same functions, so the executable is a fair
// floor for injector's size too. bench's BenchmarkStartup runs it beside a
// plain hello world (../hello) and `injector run -- true`, and
// BenchmarkDaemonRSS reads its memory beside the daemon's: what injector
// costs above this program is its own; what this program costs above hello
// world is the price of the dependencies.
package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"text/template"

	"github.com/Masterminds/sprig/v3"
	"github.com/ProtonMail/gopenpgp/v3/crypto"
	"github.com/caarlos0/env/v11"
	"github.com/go-json-experiment/json"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"
	"golang.org/x/crypto/argon2"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "use" {
		if err := use(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}
	fmt.Println("hello, world")
	if len(os.Args) > 1 && os.Args[1] == "wait" {
		io.Copy(io.Discard, os.Stdin)
	}
}

// use touches every library once; it is here for the linker, not to be run
// in the benchmark.
func use() error {
	var cfg struct {
		URL string `env:"DEPS_URL" envDefault:"http://127.0.0.1:1/"`
	}
	if err := env.Parse(&cfg); err != nil {
		return err
	}
	log := zerolog.New(os.Stderr).With().Timestamp().Logger()
	t, err := template.New("t").Funcs(sprig.TxtFuncMap()).Parse(`{{ "x" | b64enc | upper }}`)
	if err != nil {
		return err
	}
	if err := t.Execute(os.Stdout, nil); err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	http.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	key, err := crypto.PGP().KeyGeneration().AddUserId("deps", "deps@example.com").New().GenerateKey()
	if err != nil {
		return err
	}
	enc, err := crypto.PGP().Encryption().Recipient(key).New()
	if err != nil {
		return err
	}
	msg, err := enc.Encrypt([]byte("secret"))
	if err != nil {
		return err
	}
	dec, err := crypto.PGP().Decryption().DecryptionKey(key).New()
	if err != nil {
		return err
	}
	if _, err := dec.Decrypt(msg.Bytes(), crypto.Bytes); err != nil {
		return err
	}
	_ = argon2.IDKey([]byte("p"), []byte("saltsalt"), 1, 64, 1, 32)
	var v map[string]any
	resp, err := http.Get(cfg.URL)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := json.UnmarshalRead(resp.Body, &v); err != nil {
		return err
	}
	log.Info().Int("keys", len(v)).Msg("done")
	return nil
}
