//go:build unix

package supervise

import (
	"context"
	"os"
	"os/signal"
	"sync"
	"syscall"
)

// Notify relays the given signals received by this process to the
// returned channel until ctx is done, without ever losing one kind of
// signal to a burst of another.
//
// signal.Notify drops a signal when its channel is full, so one shared
// buffered channel fills up with, say, twelve SIGHUPs and the SIGTERM
// after them is gone. Here every signal has its own channel of capacity
// one: repeats of a signal that is already pending coalesce, as the
// kernel does for standard signals, and a pending SIGHUP never takes the
// place of a SIGTERM. A goroutine per signal passes them on to the
// returned unbuffered channel.
func Notify(ctx context.Context, sigs ...os.Signal) <-chan os.Signal {
	out := make(chan os.Signal)
	seen := map[os.Signal]bool{}
	for _, sig := range sigs {
		if seen[sig] {
			continue
		}
		seen[sig] = true
		in := make(chan os.Signal, 1)
		signal.Notify(in, sig)
		go func() {
			defer signal.Stop(in)
			for {
				select {
				case s := <-in:
					select {
					case out <- s:
					case <-ctx.Done():
						return
					}
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	return out
}

// Relay sends every signal from sigs to c until ctx is done or c exits.
// It returns at once; the relaying runs in the background. Take sigs from
// Notify before starting the child, so that a signal arriving while it
// starts is relayed rather than lost.
func Relay(ctx context.Context, c *Child, sigs <-chan os.Signal) {
	go func() {
		for {
			select {
			case sig := <-sigs:
				c.Signal(sig)
			case <-ctx.Done():
				return
			case <-c.Exited():
				return
			}
		}
	}()
}

// inheritedIgnored lists the signals this process was started with
// ignored that its children would inherit ignored. The Go runtime
// installs its own handler for every other signal at startup (so exec
// resets them to the default), but respects an inherited SIG_IGN for
// SIGHUP and SIGINT: under nohup, or as a background job of a
// non-interactive shell, they arrive here ignored.
var inheritedIgnored = func() []os.Signal {
	var sigs []os.Signal
	for _, s := range []os.Signal{syscall.SIGHUP, syscall.SIGINT} {
		if signal.Ignored(s) {
			sigs = append(sigs, s)
		}
	}
	return sigs
}()

var resetOnce sync.Once

// ResetIgnoredSignals makes every child started from now on begin with
// the default action for SIGHUP and SIGINT, even when this process was
// started with them ignored. A supervisor forwards signals and sends
// SIGHUP on a change; a child that inherited them ignored would never see
// them (a shell cannot even trap a signal that was ignored when it
// started). systemd starts services with default dispositions for the
// same reason. Start calls it; call it before starting other children
// (commands) by hand.
//
// Go has no call to restore a default disposition, and exec keeps
// SIG_IGN but resets a caught signal to its default: so the inherited
// ignored signals are caught here, into a channel nobody reads. This
// process goes on ignoring them in effect (signal.Notify drops what does
// not fit the channel); only its children change.
func ResetIgnoredSignals() {
	resetOnce.Do(func() {
		if len(inheritedIgnored) > 0 {
			signal.Notify(make(chan os.Signal, 1), inheritedIgnored...)
		}
	})
}
