// Package devserve runs `injector dev --serve` for the end-to-end tests
// (Docker, Kubernetes) and reads the settings file it prints, as a user
// sources it from another shell. Production code never imports it.
package devserve

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Server is one running `injector dev --serve`.
type Server struct {
	// Settings are the settings file's variables: PASSWORK_URL,
	// PASSWORK_TOKEN, INJECTOR_CA_FILE…
	Settings map[string]string
	// Credentials is the directory of one-file-per-setting for containers
	// that dev prints when it listens off loopback ("" otherwise).
	Credentials string

	cmd      *exec.Cmd
	done     chan error
	stopOnce sync.Once
}

// Start runs binary with `dev --serve` and args, in env (nil: this
// process's environment), and returns once the settings file is written;
// with --listen in args, once the credentials directory is written too.
func Start(binary string, env []string, args ...string) (*Server, error) {
	cmd := exec.Command(binary, append([]string{"dev", "--serve"}, args...)...)
	cmd.Env = env
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &Server{Settings: map[string]string{}, cmd: cmd, done: make(chan error, 1)}
	// The settings file is named on a line `  set -a; . FILE; set +a`, the
	// directory for containers on the last line dev prints,
	// `  INJECTOR_CREDENTIALS=DIR docker-compose …`.
	wantCredentials := false
	for _, a := range args {
		wantCredentials = wantCredentials || a == "--listen" || strings.HasPrefix(a, "--listen=")
	}
	type printed struct{ file, credentials string }
	found := make(chan printed, 1)
	go func() {
		settingsRE := regexp.MustCompile(`\. (\S+); set \+a`)
		credentialsRE := regexp.MustCompile(`^  INJECTOR_CREDENTIALS=(\S+) docker-compose `)
		sc := bufio.NewScanner(stdout)
		var p printed
		sent := false
		for sc.Scan() {
			if m := settingsRE.FindStringSubmatch(sc.Text()); m != nil && p.file == "" {
				p.file = m[1]
			}
			if m := credentialsRE.FindStringSubmatch(sc.Text()); m != nil {
				p.credentials = m[1]
			}
			if !sent && p.file != "" && (!wantCredentials || p.credentials != "") {
				found <- p
				sent = true // keep draining
			}
		}
		io.Copy(io.Discard, stdout)
		s.done <- cmd.Wait()
	}()
	var file string
	select {
	case p := <-found:
		file, s.Credentials = p.file, p.credentials
	case err := <-s.done:
		return nil, fmt.Errorf("exited before serving: %v\n%s", err, stderr.String())
	case <-time.After(3 * time.Minute):
		s.Stop()
		return nil, errors.New("no settings file after 3 minutes")
	}
	data, err := os.ReadFile(file)
	if err != nil {
		s.Stop()
		return nil, err
	}
	for line := range strings.Lines(string(data)) {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), "="); ok {
			s.Settings[k] = strings.Trim(v, "'")
		}
	}
	if s.Settings["PASSWORK_URL"] == "" || s.Settings["PASSWORK_TOKEN"] == "" {
		s.Stop()
		return nil, fmt.Errorf("%s: no Passwork settings", file)
	}
	return s, nil
}

// Stop ends the server as Ctrl-C does (SIGTERM, SIGKILL after a minute)
// and waits for it; it may be called more than once.
func (s *Server) Stop() {
	s.stopOnce.Do(func() {
		s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.done:
		case <-time.After(time.Minute):
			s.cmd.Process.Kill()
			<-s.done
		}
	})
}
