package main

import (
	"fmt"
	"os"

	"github.com/injector-dev/injector/internal/harden"
)

// hardenThenRun makes the process non-dumpable before anything is read,
// so no other process of the same user (the child above all) can read
// injector's credentials through /proc (see internal/harden), then runs
// the command. A process that cannot be hardened does not run.
func hardenThenRun(args []string) int {
	if err := harden.Process(); err != nil {
		fmt.Fprintln(os.Stderr, "injector:", err)
		return exitFailure
	}
	return run(args, os.Stdout, os.Stderr)
}
