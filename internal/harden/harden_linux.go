//go:build linux

package harden

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// Process makes the calling process non-dumpable; see the package
// documentation. Call it first thing in main, before any secret is read.
func Process() error {
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		return fmt.Errorf("harden: make the process non-dumpable: %w", err)
	}
	return nil
}

// Dumpable reports whether the process is dumpable, for tests and for a
// startup check.
func Dumpable() (bool, error) {
	v, err := unix.PrctlRetInt(unix.PR_GET_DUMPABLE, 0, 0, 0, 0)
	if err != nil {
		return false, fmt.Errorf("harden: PR_GET_DUMPABLE: %w", err)
	}
	return v != 0, nil
}
