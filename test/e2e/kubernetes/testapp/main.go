// Command testapp is the application of the Kubernetes end-to-end tests:
// the image the example manifests call example/app:1.0, packed with
// test/imagetar (no shell, no base image). As the app it reads the files it
// is given the way a real one reads its configuration, logs a digest of
// each (never the content), and reads them again on SIGHUP:
//
//	app --config FILE --env-file FILE   the application (any number of either)
//	app stat FILE...                     print a JSON line per file: mode,
//	                                     owner, content (kubectl exec)
//	app peek NAME PATH                   for each process named NAME it can
//	                                     see, try to read its environment and
//	                                     PATH in its filesystem through /proc;
//	                                     print a JSON line per process
//
// Its log lines, which the tests look for:
//
//	app: started as uid U gid G
//	app: loaded FILE sha256:HEX             at start
//	app: SIGHUP N: loaded FILE sha256:HEX   after the Nth SIGHUP
//
// It exits 0 on SIGTERM, so a Pod stops at once.
package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
)

// Stat is what `app stat` prints for one file.
type Stat struct {
	Path    string `json:"path"`
	Mode    string `json:"mode"` // permission bits, octal, e.g. "0400"
	UID     int    `json:"uid"`
	GID     int    `json:"gid"`
	Content string `json:"content"`
	Error   string `json:"error,omitempty"`
}

func main() {
	args := os.Args[1:]
	if len(args) > 0 && args[0] == "stat" {
		enc := json.NewEncoder(os.Stdout)
		for _, p := range args[1:] {
			enc.Encode(stat(p))
		}
		return
	}
	if len(args) == 3 && args[0] == "peek" {
		enc := json.NewEncoder(os.Stdout)
		for _, p := range peek(args[1], args[2]) {
			enc.Encode(p)
		}
		return
	}
	var files []string
	for i := 0; i < len(args); i++ {
		switch args[i] {
		case "--config", "--env-file":
			if i+1 == len(args) {
				fail("%s needs a file", args[i])
			}
			files = append(files, args[i+1])
			i++
		default:
			fail("unknown argument %q; usage: app [--config FILE] [--env-file FILE] | app stat FILE...", args[i])
		}
	}

	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT)
	fmt.Printf("app: started as uid %d gid %d\n", os.Getuid(), os.Getgid())
	load("", files)
	hups := 0
	for sig := range signals {
		if sig != syscall.SIGHUP {
			fmt.Printf("app: %v, exiting\n", sig)
			return
		}
		hups++
		load(fmt.Sprintf("SIGHUP %d: ", hups), files)
	}
}

// load reads every file as the application would and logs its digest; a
// file it cannot read is logged and the app keeps running, so the test sees
// the error instead of a crash loop.
func load(prefix string, files []string) {
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			fmt.Printf("app: %scannot read %s: %v\n", prefix, f, err)
			continue
		}
		fmt.Printf("app: %sloaded %s %s\n", prefix, f, digest(data))
	}
}

// digest is how the app names a file's content in its log.
func digest(data []byte) string {
	sum := sha256.Sum256(data)
	return "sha256:" + hex.EncodeToString(sum[:])
}

func stat(p string) Stat {
	s := Stat{Path: p}
	fi, err := os.Stat(p)
	if err != nil {
		s.Error = err.Error()
		return s
	}
	st := fi.Sys().(*syscall.Stat_t)
	s.Mode = fmt.Sprintf("%04o", fi.Mode().Perm())
	s.UID, s.GID = int(st.Uid), int(st.Gid)
	data, err := os.ReadFile(p)
	if err != nil {
		s.Error = err.Error()
	}
	s.Content = string(data)
	return s
}

// Peek is what `app peek` prints for one process: what reading its
// environment and a file of its filesystem gave ("" when it worked).
type Peek struct {
	PID        int    `json:"pid"`
	EnvironErr string `json:"environErr"`
	FileErr    string `json:"fileErr"`
}

// peek tries what a curious app in a Pod that shares its process namespace
// would: another container's environment and files through /proc.
func peek(name, path string) []Peek {
	var out []Peek
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		comm, err := os.ReadFile("/proc/" + e.Name() + "/comm")
		if err != nil || strings.TrimSpace(string(comm)) != name {
			continue
		}
		p := Peek{PID: pid}
		if _, err := os.ReadFile("/proc/" + e.Name() + "/environ"); err != nil {
			p.EnvironErr = err.Error()
		}
		if _, err := os.ReadFile("/proc/" + e.Name() + "/root" + path); err != nil {
			p.FileErr = err.Error()
		}
		out = append(out, p)
	}
	return out
}

func fail(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "app: "+format+"\n", a...)
	os.Exit(2)
}
