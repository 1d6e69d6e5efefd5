//go:build unix

package daemon

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// Action kinds.
const (
	None    = "none"    // do nothing
	Signal  = "signal"  // send Action.Signal to the child, or to Action.Process
	Restart = "restart" // stop the child and start it again with the current env
	Command = "command" // run Action.Command with sh -c
)

// Action is what happens when a rendered file or the child's environment
// changes. The zero value does nothing.
type Action struct {
	Kind    string
	Signal  os.Signal
	Command string
	// Process, for a signal, names the processes to signal instead of the
	// child: every other process whose command name or argv[0]'s base name
	// it is (see signalProcesses). A Kubernetes sidecar signals its app
	// this way, in a Pod that shares one process namespace.
	Process string
}

// ParseAction parses the --on-change syntax: none, restart,
// signal:SIGHUP (also signal:HUP, signal:hup or signal:1),
// signal:SIGHUP:PROCESS or command:CMD.
func ParseAction(s string) (Action, error) {
	kind, arg, hasArg := strings.Cut(s, ":")
	switch kind {
	case None, Restart:
		if hasArg {
			return Action{}, fmt.Errorf("action %q: %s takes no argument", s, kind)
		}
		return Action{Kind: kind}, nil
	case Signal:
		name, process, hasProcess := strings.Cut(arg, ":")
		sig, err := parseSignal(name)
		if err != nil {
			return Action{}, fmt.Errorf("action %q: %w", s, err)
		}
		if hasProcess && (process == "" || strings.Contains(process, "/")) {
			return Action{}, fmt.Errorf("action %q: want a process name after the signal, like signal:SIGHUP:nginx", s)
		}
		return Action{Kind: Signal, Signal: sig, Process: process}, nil
	case Command:
		if strings.TrimSpace(arg) == "" {
			return Action{}, fmt.Errorf("action %q: command is empty", s)
		}
		return Action{Kind: Command, Command: arg}, nil
	}
	return Action{}, fmt.Errorf("action %q: want none, restart, signal:SIGNAL or command:CMD", s)
}

func parseSignal(s string) (syscall.Signal, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n <= 0 || n >= 65 {
			return 0, fmt.Errorf("signal %d out of range", n)
		}
		return syscall.Signal(n), nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if sig := unix.SignalNum(name); sig != 0 {
		return sig, nil
	}
	return 0, fmt.Errorf("unknown signal %q", s)
}

// String returns the action in ParseAction's syntax.
func (a Action) String() string {
	switch a.Kind {
	case "", None:
		return None
	case Signal:
		if a.Process != "" {
			return Signal + ":" + signalName(a.Signal) + ":" + a.Process
		}
		return Signal + ":" + signalName(a.Signal)
	case Command:
		return Command + ":" + a.Command
	}
	return a.Kind
}

// plan is the deduplicated set of actions one refresh triggers: one
// restart however many files want it, each signal once per target, each
// command once.
type plan struct {
	restart  bool
	signals  []Action // of kind Signal
	commands []string
}

func (p *plan) add(a Action) {
	switch a.Kind {
	case Restart:
		p.restart = true
	case Signal:
		for _, s := range p.signals {
			if s.Signal == a.Signal && s.Process == a.Process {
				return
			}
		}
		p.signals = append(p.signals, a)
	case Command:
		for _, c := range p.commands {
			if c == a.Command {
				return
			}
		}
		p.commands = append(p.commands, a.Command)
	}
}

func (p *plan) empty() bool { return !p.restart && len(p.signals) == 0 && len(p.commands) == 0 }

// signalName returns "SIGHUP" rather than Go's "hangup".
func signalName(sig os.Signal) string {
	if s, ok := sig.(syscall.Signal); ok && unix.SignalName(s) != "" {
		return unix.SignalName(s)
	}
	return fmt.Sprint(sig)
}
