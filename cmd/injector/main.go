// Command injector renders secrets from password managers into files and
// process environments. See README.md for the tour; `injector help` lists
// the commands.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// version is set at build time: -ldflags "-X main.version=v1.2.3".
var version = "dev"

// Exit codes. A supervised or exec'd child's own code is passed through.
const (
	exitOK      = 0
	exitFailure = 1 // a secret could not be resolved or a file not written
	exitUsage   = 2 // bad flags, settings or templates
	exitSetup   = 3 // dev could not start
)

const usage = `injector renders secrets from Passwork, Passbolt and PassAgent into files
and process environments.

Usage:
  injector run [flags] -- CMD ARGS...   render templates, then run CMD with secrets in its env
  injector render [flags]               render file templates and exit (or keep refreshing with --interval)
  injector get PROVIDER:PATH [--field F] print one secret
  injector check [flags]                resolve every reference, print problems, never values
  injector dev                          try it: embedded emulators seeded from examples/
  injector version

Run 'injector COMMAND -h' for a command's flags. Templates use << >>:
  DB_PASSWORD=<< passwork "prod/db/postgres" "password" >>
`

func main() {
	os.Exit(hardenThenRun(os.Args[1:]))
}

// run dispatches a command and returns the process exit code.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	// SIGINT/SIGTERM cancel the context of one-shot commands. Commands that
	// supervise a child install their own handling.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	cmd, rest := args[0], args[1:]
	var err error
	switch cmd {
	case "run":
		err = cmdRun(ctx, rest, stdout, stderr)
	case "render":
		err = cmdRender(ctx, rest, stdout, stderr)
	case "get":
		err = cmdGet(ctx, rest, stdout, stderr)
	case "check":
		err = cmdCheck(ctx, rest, stdout, stderr)
	case "dev":
		err = cmdDev(ctx, rest, stdout, stderr)
	case "webhook":
		fmt.Fprintln(stderr, "injector: the Kubernetes webhook is its own binary and image: injector-webhook (see docs/kubernetes.md)")
		return exitUsage
	case "version", "--version":
		fmt.Fprintln(stdout, "injector", version)
		return exitOK
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return exitOK
	default:
		fmt.Fprintf(stderr, "injector: unknown command %q\n\n%s", cmd, usage)
		return exitUsage
	}
	return exitCode(err, stderr)
}

// exitError carries an exit code out of a command; a nil error is success.
type exitError struct {
	code int
	err  error // nil when the code says it all (a child's exit status)
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

func usageErr(err error) error   { return &exitError{code: exitUsage, err: err} }
func failureErr(err error) error { return &exitError{code: exitFailure, err: err} }

func exitCode(err error, stderr io.Writer) int {
	if err == nil {
		return exitOK
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			fmt.Fprintln(stderr, "injector:", ee.err)
		}
		return ee.code
	}
	fmt.Fprintln(stderr, "injector:", err)
	return exitFailure
}
