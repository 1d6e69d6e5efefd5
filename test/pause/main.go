// Command pause is the sandbox ("pause") container of the test node started by
// scripts/k8s-node: it holds a pod's namespaces open and does nothing else.
// It exits 0 on SIGINT or SIGTERM and, as PID 1 of a pod that shares its
// process namespace, reaps the orphans it inherits. Built static and packed
// with test/imagetar, it replaces the registry image no CI machine can pull.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for sig := range signals {
		if sig != syscall.SIGCHLD {
			os.Exit(0)
		}
		reap()
	}
}

// reap collects every exited child; one SIGCHLD may stand for several.
func reap() {
	for {
		var status syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &status, syscall.WNOHANG, nil)
		if pid <= 0 || err != nil {
			return
		}
	}
}
