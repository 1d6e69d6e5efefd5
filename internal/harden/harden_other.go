//go:build !linux

package harden

// Process does nothing outside Linux, the only system injector ships for
// (its images and deployments are Linux). Elsewhere the fence the package
// documentation describes is not built.
func Process() error { return nil }

// Dumpable reports true: the process was not changed.
func Dumpable() (bool, error) { return true, nil }
