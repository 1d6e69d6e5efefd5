// Command passbolt is the floor of a cold Passbolt run measured the way
// the run itself is: as a new process. bench's BenchmarkRunColdPassbolt
// writes the messages a cold run of its data must decrypt to a JSON file
// (pgpwork.Messages) and runs
//
//	passbolt FILE decrypt   # read FILE, unlock the key, decrypt every message once
//	passbolt FILE           # read FILE only
//
// alternately. The difference of their CPU is the unavoidable OpenPGP
// work with what a new process pays for it beside (its code and heap
// touched for the first time, its first garbage collections), just as
// the client's figure is a cold run's CPU less that of `injector run --
// true`.
package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/injector-dev/injector/bench/floor/pgpwork"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "passbolt floor:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) < 1 || len(args) > 2 || len(args) == 2 && args[1] != "decrypt" {
		return fmt.Errorf("usage: passbolt FILE [decrypt]")
	}
	data, err := os.ReadFile(args[0])
	if err != nil {
		return err
	}
	var m pgpwork.Messages
	if err := json.Unmarshal(data, &m); err != nil {
		return fmt.Errorf("%s: %w", args[0], err)
	}
	if len(args) == 2 {
		return pgpwork.Decrypt(m)
	}
	return nil
}
