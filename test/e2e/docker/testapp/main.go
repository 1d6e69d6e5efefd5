// Command testapp is the application the Docker end-to-end tests wrap with
// `injector run`: it reports what it was given and behaves on signals as
// told, so the tests can check what reaches an application and what comes
// back out of `docker run` and `docker stop`.
//
//	testapp env          print a JSON report (uid, gid, environment, what
//	                     /proc/1/environ and /proc/1/cmdline show) and exit 0
//	testapp exit N       exit with code N
//	testapp raise        die by its own SIGTERM (default disposition)
//	testapp term N       print "ready", wait for SIGTERM, print
//	                     "got SIGTERM", exit N
//	testapp ignore-term  print "ready", print "ignoring SIGTERM" for every
//	                     SIGTERM and keep running
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
)

// Report is what `testapp env` prints.
type Report struct {
	UID, GID int
	Env      []string
	// Proc1Environ is the environment of PID 1 (injector, when it
	// supervises), if a process of the container's user can read it
	// (injector makes itself non-dumpable so that it cannot).
	Proc1Environ    []string
	Proc1EnvironErr string `json:",omitempty"`
	// Proc1Cmdline is PID 1's command line, readable by anyone.
	Proc1Cmdline []string
}

func main() {
	if len(os.Args) < 2 {
		fail("usage: testapp env|exit N|raise|term N|ignore-term")
	}
	switch os.Args[1] {
	case "env":
		r := Report{UID: os.Getuid(), GID: os.Getgid(), Env: os.Environ()}
		if b, err := os.ReadFile("/proc/1/environ"); err != nil {
			r.Proc1EnvironErr = err.Error()
		} else {
			r.Proc1Environ = strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
		}
		if b, err := os.ReadFile("/proc/1/cmdline"); err == nil {
			r.Proc1Cmdline = strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
		}
		if err := json.NewEncoder(os.Stdout).Encode(r); err != nil {
			fail(err.Error())
		}
	case "exit":
		os.Exit(code())
	case "raise":
		signal.Reset(syscall.SIGTERM)
		syscall.Kill(os.Getpid(), syscall.SIGTERM)
		select {}
	case "term":
		n := code()
		c := make(chan os.Signal, 1)
		signal.Notify(c, syscall.SIGTERM)
		fmt.Println("ready")
		<-c
		fmt.Println("got SIGTERM")
		os.Exit(n)
	case "ignore-term":
		c := make(chan os.Signal, 1)
		signal.Notify(c, syscall.SIGTERM)
		fmt.Println("ready")
		for range c {
			fmt.Println("ignoring SIGTERM")
		}
	default:
		fail("unknown mode " + os.Args[1])
	}
}

func code() int {
	if len(os.Args) < 3 {
		fail(os.Args[1] + " needs an exit code")
	}
	n, err := strconv.Atoi(os.Args[2])
	if err != nil {
		fail(err.Error())
	}
	return n
}

func fail(msg string) {
	fmt.Fprintln(os.Stderr, "testapp:", msg)
	os.Exit(100)
}
