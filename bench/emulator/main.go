// Command emulator serves a Passwork emulator seeded with n secrets in v
// vaults on loopback, for timing whole injector processes against it with
// any external timer (/usr/bin/time, hyperfine, perf stat). It writes into
// -dir:
//
//	env      the PASSWORK_* settings, one NAME=value a line
//	app.env  an env file with one template per secret (S0=<< passwork … >>)
//	app.tpl  the same references as one file template
//
// and serves until SIGINT or SIGTERM. Example (see docs/performance.md):
//
//	go run ./bench/emulator -secrets 100 -vaults 3 -dir /tmp/emu &
//	env $(cat /tmp/emu/env) injector run --env-file /tmp/emu/app.env -- true
package main

import (
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/injector-dev/injector/internal/fetch/fetchtest"
	"github.com/injector-dev/injector/internal/fetch/passwork/passworktest"
)

func main() {
	n := flag.Int("secrets", 100, "secrets to seed")
	vaults := flag.Int("vaults", 3, "vaults to spread them over")
	dir := flag.String("dir", "", "directory for env, app.env and app.tpl (required)")
	flag.Parse()
	if *dir == "" || *n < 1 || *vaults < 1 {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(*n, *vaults, *dir); err != nil {
		log.Fatal(err)
	}
}

func run(n, vaults int, dir string) error {
	srv := passworktest.NewServer()
	defer srv.Close()
	es := make([]fetchtest.Entry, n)
	var envFile, tpl strings.Builder
	for i := range es {
		path := fmt.Sprintf("vault%d/apps/secret%05d", i%vaults, i)
		es[i] = fetchtest.Entry{Path: path, Fields: map[string]string{"password": fmt.Sprintf("pw-%05d-%s", i, strings.Repeat("x", 24)), "login": "app"}}
		fmt.Fprintf(&envFile, "S%d=<< passwork %q >>\n", i, path)
		fmt.Fprintf(&tpl, "%s=<< passwork %q >>\n", path, path)
	}
	if err := srv.Seed(es); err != nil {
		return err
	}
	c := srv.Config()
	settings := fmt.Sprintf("PASSWORK_URL=%s\nPASSWORK_TOKEN=%s\nPASSWORK_REFRESH_TOKEN=%s\nPASSWORK_MASTER_KEY=%s\n",
		c.URL, c.Token, c.RefreshToken, c.MasterKey)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	for name, text := range map[string]string{"env": settings, "app.env": envFile.String(), "app.tpl": tpl.String()} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o600); err != nil {
			return err
		}
	}
	fmt.Printf("serving %d secrets in %d vaults at %s; settings in %s\n", n, vaults, c.URL, filepath.Join(dir, "env"))
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	<-sig
	return nil
}
