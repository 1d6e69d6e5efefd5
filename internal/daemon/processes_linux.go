package daemon

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// signalProcesses sends sig to every process other than this one whose
// command name (/proc/PID/comm, which the kernel cuts to 15 bytes) or whose
// argv[0]'s base name is name, the way pidof finds a program. It returns
// the PIDs it signalled. A process that exits meanwhile is skipped; any
// other failure (EPERM: a process of another user, which only CAP_KILL may
// signal) is returned after every match was tried.
func signalProcesses(name string, sig os.Signal) ([]int, error) {
	s, ok := sig.(syscall.Signal)
	if !ok {
		return nil, fmt.Errorf("signal %v is not a system signal", sig)
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	self := os.Getpid()
	var pids []int
	var errs []error
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self || !processNamed(pid, name) {
			continue
		}
		if err := syscall.Kill(pid, s); err != nil {
			if !errors.Is(err, syscall.ESRCH) {
				errs = append(errs, fmt.Errorf("process %d: %w", pid, err))
			}
			continue
		}
		pids = append(pids, pid)
	}
	return pids, errors.Join(errs...)
}

// processNamed reports whether process pid runs the program name.
func processNamed(pid int, name string) bool {
	dir := "/proc/" + strconv.Itoa(pid)
	if comm, err := os.ReadFile(dir + "/comm"); err == nil && strings.TrimSuffix(string(comm), "\n") == name {
		return true
	}
	cmdline, err := os.ReadFile(dir + "/cmdline")
	if err != nil || len(cmdline) == 0 {
		return false // gone, or a kernel thread
	}
	argv0, _, _ := bytes.Cut(cmdline, []byte{0})
	return filepath.Base(string(argv0)) == name
}
