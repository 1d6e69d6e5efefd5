// Command emulator serves a Passwork (default) or Passbolt emulator seeded
// with n secrets in v vaults (Passbolt: top-level folders) on loopback, for
// timing whole injector processes against it with any external timer
// (/usr/bin/time, hyperfine, perf stat). It writes into -dir:
//
//	env      the PASSWORK_* or PASSBOLT_* settings, one NAME=value a line
//	         (Passbolt's armored private key is in the file "key", named
//	         by PASSBOLT_PRIVATE_KEY_FILE)
//	app.env  an env file with one template per secret (S0=<< passwork … >>)
//	app.tpl  the same references as one file template
//	messages.json  (Passbolt) the ciphertext a cold run must decrypt, for
//	         the floor program: go run ./bench/floor/passbolt messages.json decrypt
//
// and serves until SIGINT or SIGTERM. Example (see docs/performance.md):
//
//	go run ./bench/emulator -secrets 100 -vaults 3 -dir /tmp/emu &
//	env $(cat /tmp/emu/env) injector run --env-file /tmp/emu/app.env -- true
//	go run ./bench/emulator -provider passbolt -secrets 100 -vaults 4 -dir /tmp/pb &
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/injector-dev/injector/internal/fetch/fetchtest"
	"github.com/injector-dev/injector/internal/fetch/passbolt/passbolttest"
	"github.com/injector-dev/injector/internal/fetch/passwork/passworktest"
)

func main() {
	n := flag.Int("secrets", 100, "secrets to seed")
	vaults := flag.Int("vaults", 3, "vaults to spread them over")
	dir := flag.String("dir", "", "directory for env, app.env and app.tpl (required)")
	provider := flag.String("provider", "passwork", "passwork or passbolt")
	flag.Parse()
	if *dir == "" || *n < 1 || *vaults < 1 || *provider != "passwork" && *provider != "passbolt" {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(*provider, *n, *vaults, *dir); err != nil {
		log.Fatal(err)
	}
}

func run(provider string, n, vaults int, dir string) error {
	es := make([]fetchtest.Entry, n)
	var envFile, tpl strings.Builder
	for i := range es {
		path := fmt.Sprintf("vault%d/apps/secret%05d", i%vaults, i)
		es[i] = fetchtest.Entry{Path: path, Fields: map[string]string{"password": fmt.Sprintf("pw-%05d-%s", i, strings.Repeat("x", 24)), "login": "app"}}
		fmt.Fprintf(&envFile, "S%d=<< %s %q >>\n", i, provider, path)
		fmt.Fprintf(&tpl, "%s=<< %s %q >>\n", path, provider, path)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	files := map[string]string{"app.env": envFile.String(), "app.tpl": tpl.String()}
	var url string
	switch provider {
	case "passwork":
		srv := passworktest.NewServer()
		defer srv.Close()
		if err := srv.Seed(es); err != nil {
			return err
		}
		c := srv.Config()
		url = c.URL
		files["env"] = fmt.Sprintf("PASSWORK_URL=%s\nPASSWORK_TOKEN=%s\nPASSWORK_REFRESH_TOKEN=%s\nPASSWORK_MASTER_KEY=%s\n",
			c.URL, c.Token, c.RefreshToken, c.MasterKey)
	case "passbolt":
		srv, err := passbolttest.New()
		if err != nil {
			return err
		}
		defer srv.Close()
		if err := srv.Seed(es); err != nil {
			return err
		}
		c := srv.Config()
		url = c.URL
		// The passphrase has a space: no "env $(cat env)" splitting of it.
		files["key"] = c.PrivateKey
		files["passphrase"] = c.Passphrase
		msgs, err := srv.Messages()
		if err != nil {
			return err
		}
		data, err := json.Marshal(msgs)
		if err != nil {
			return err
		}
		files["messages.json"] = string(data)
		files["env"] = fmt.Sprintf("PASSBOLT_URL=%s\nPASSBOLT_USER_ID=%s\nPASSBOLT_SERVER_FINGERPRINT=%s\nPASSBOLT_PRIVATE_KEY_FILE=%s\nPASSBOLT_PASSPHRASE_FILE=%s\n",
			c.URL, c.UserID, c.ServerFingerprint, filepath.Join(dir, "key"), filepath.Join(dir, "passphrase"))
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o600); err != nil {
			return err
		}
	}
	fmt.Printf("serving %d %s secrets in %d vaults at %s; settings in %s\n", n, provider, vaults, url, filepath.Join(dir, "env"))
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	<-sig
	return nil
}
