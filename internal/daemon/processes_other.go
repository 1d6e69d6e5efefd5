//go:build unix && !linux

package daemon

import (
	"errors"
	"os"
)

// signalProcesses finds processes by name through Linux's /proc, which
// other systems lack.
func signalProcesses(name string, sig os.Signal) ([]int, error) {
	return nil, errors.New("signalling processes by name needs Linux's /proc")
}
