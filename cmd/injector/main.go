// Command injector renders secrets from password managers into files and
// process environments. See README.md for the tour; `injector --help` lists
// the commands.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/injector-dev/injector/internal/buildinfo"
	"github.com/injector-dev/injector/internal/fetch"
	"github.com/injector-dev/injector/internal/pipeline"
)

// Exit codes, one table for every command (README.md, "Exit codes").
const (
	exitOK = 0
	// exitFailure: a template or a secret failed. A template does not
	// parse, a reference does not resolve (not found, denied, the server
	// failed or rejected the credentials), a file could not be written;
	// nothing was written.
	exitFailure = 1
	// exitUsage: injector was called or configured wrongly. An unknown
	// command or flag, a stray argument, a bad flag value, a setting that
	// is missing or malformed (NAME_FILE unreadable, provider not
	// configured), an address that cannot be listened on.
	exitUsage = 2
	// run only, as env(1) and shells do: the command was found but could
	// not be executed, or was not found. Otherwise the command's own exit
	// code, or 128+N when a signal N killed it.
	exitCannotExecute = 126
	exitNotFound      = 127
)

func main() {
	os.Exit(hardenThenRun(os.Args[1:]))
}

// commands returns every subcommand, built fresh: each carries its own
// option variables.
func commands() []*command {
	return []*command{runCommand(), renderCommand(), getCommand(), checkCommand(), devCommand(),
		probeCommand(), versionCommand(), completionCommand(), helpCommand()}
}

func lookup(name string) *command {
	for _, c := range commands() {
		if c.name == name {
			return c
		}
	}
	return nil
}

// run dispatches a command and returns the process exit code.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		mainHelp(stderr, commands())
		return exitUsage
	}
	name := args[0]
	switch name {
	case "-h", "--help", "-help":
		mainHelp(stdout, commands())
		return exitOK
	case "--version", "-version", "-v":
		buildinfo.Get().Print(stdout, "injector")
		return exitOK
	case "webhook":
		fmt.Fprintln(stderr, "injector: the Kubernetes webhook is its own binary and image: injector-webhook (see docs/kubernetes.md)")
		return exitUsage
	}
	c := lookup(name)
	if c == nil {
		var names []string
		for _, c := range commands() {
			names = append(names, c.name)
		}
		msg := fmt.Sprintf("injector: unknown command %q", name)
		if s := suggest(name, names); s != "" {
			msg += fmt.Sprintf("; did you mean %q?", s)
		}
		fmt.Fprintf(stderr, "%s\nRun 'injector --help' for the list of commands.\n", msg)
		return exitUsage
	}

	f := newFlagSet(c.name)
	if c.flags != nil {
		c.flags(f)
	}
	pos, err := f.parse(args[1:], c.passthrough)
	if errors.Is(err, flag.ErrHelp) {
		c.help(stdout)
		return exitOK
	}
	if err != nil {
		err = flagError(err)
	} else {
		err = c.checkArgs(pos)
	}
	if err != nil {
		fmt.Fprintf(stderr, "injector %s: %v\nRun 'injector %s --help' for usage.\n", c.name, err, c.name)
		return exitUsage
	}

	// SIGINT/SIGTERM cancel the context of one-shot commands. Commands that
	// supervise a child install their own handling.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return exitCode(c.run(ctx, pos, stdout, stderr), stderr)
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

func usageErr(err error) error { return &exitError{code: exitUsage, err: err} }

// exitCode prints err and returns the exit code for it: the code an
// exitError carries, exitUsage for a provider's missing or malformed
// settings and for templates named wrongly on the command line,
// exitFailure for anything else.
func exitCode(err error, stderr io.Writer) int {
	if err == nil {
		return exitOK
	}
	code := exitFailure
	var ee *exitError
	switch {
	case errors.As(err, &ee):
		code = ee.code
		err = ee.err
	case errors.Is(err, fetch.ErrConfig), errors.Is(err, pipeline.ErrUsage):
		code = exitUsage
	}
	if err != nil {
		fmt.Fprintln(stderr, "injector:", err)
	}
	return code
}
