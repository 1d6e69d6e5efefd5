package render

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

// The helper process: RENDER_TEST_HELPER selects what the test binary does
// when a test runs it again (see helper).
func TestMain(m *testing.M) {
	switch os.Getenv("RENDER_TEST_HELPER") {
	case "write":
		// Write RENDER_TEST_CONTENT to RENDER_TEST_PATH n times.
		path, content := os.Getenv("RENDER_TEST_PATH"), os.Getenv("RENDER_TEST_CONTENT")
		n, _ := strconv.Atoi(os.Getenv("RENDER_TEST_N"))
		for i := range n {
			if _, err := WriteAll([]File{{Path: path, Content: []byte(version(content, i))}}); err != nil {
				fmt.Fprintln(os.Stderr, "write", i, err)
				os.Exit(1)
			}
		}
		os.Exit(0)
	case "lock":
		// Create RENDER_TEST_PATH, lock it as a writer in flight does,
		// say so, and hold it until stdin closes.
		f, err := os.OpenFile(os.Getenv("RENDER_TEST_PATH"), os.O_RDWR|os.O_CREATE, 0o600)
		if err == nil {
			err = unix.Flock(int(f.Fd()), unix.LOCK_EX)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Println("locked")
		io.Copy(io.Discard, os.Stdin)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// helper starts the test binary as helper mode with env.
func helper(t *testing.T, mode string, env ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), append([]string{"RENDER_TEST_HELPER=" + mode}, env...)...)
	return cmd
}

// version is what a writer of content writes the i-th time: it alternates
// with a marked copy, so every write really changes the file.
func version(content string, i int) string {
	if i%2 == 1 {
		return "x" + content[1:]
	}
	return content
}

// startReader reads path over and over until the returned stop is
// called, failing the test unless each read is one writer's whole content.
func startReader(t *testing.T, path string, contents []string) (stop func()) {
	done, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		for {
			select {
			case <-done:
				return
			default:
			}
			b, err := os.ReadFile(path)
			if os.IsNotExist(err) {
				continue
			}
			if err != nil {
				t.Errorf("read: %v", err)
				return
			}
			if !slices.ContainsFunc(contents, func(c string) bool { return string(b) == c || string(b) == version(c, 1) }) {
				t.Errorf("reader saw a file that is no writer's whole content (%d bytes)", len(b))
				return
			}
		}
	}()
	return func() { close(done); <-stopped }
}

// Two writers rendering the same destination both succeed, every time,
// and a reader only ever sees a whole file: a writer's stale-file cleanup
// must not delete the other's temp file in flight. Writers in goroutines
// of one process and in separate processes.
func TestConcurrentWritersOfOneDestination(t *testing.T) {
	const n = 100
	contents := []string{string(bytes.Repeat([]byte("a"), 16<<10)), string(bytes.Repeat([]byte("b"), 16<<10))}

	t.Run("goroutines", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "app.conf")
		stopReader := startReader(t, path, contents)
		var wg sync.WaitGroup
		errs := make([]int, len(contents))
		for w, c := range contents {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range n {
					if _, err := WriteAll([]File{{Path: path, Content: []byte(version(c, i))}}); err != nil {
						errs[w]++
						if errs[w] == 1 {
							t.Errorf("writer %d: %v", w, err)
						}
					}
				}
			}()
		}
		wg.Wait()
		stopReader()
		if errs[0]+errs[1] > 0 {
			t.Errorf("%d of %d writes failed", errs[0]+errs[1], 2*n)
		}
		assertNoTemps(t, filepath.Dir(path))
	})

	t.Run("processes", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "app.conf")
		stopReader := startReader(t, path, contents)
		var cmds []*exec.Cmd
		var outs []*bytes.Buffer
		for _, c := range contents {
			cmd := helper(t, "write", "RENDER_TEST_PATH="+path, "RENDER_TEST_CONTENT="+c, "RENDER_TEST_N="+strconv.Itoa(n))
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			cmds, outs = append(cmds, cmd), append(outs, &out)
		}
		for i, cmd := range cmds {
			if err := cmd.Wait(); err != nil {
				t.Errorf("writer process %d: %v\n%s", i, err, outs[i])
			}
		}
		stopReader()
		assertNoTemps(t, filepath.Dir(path))
	})
}

// A temp file whose writer is alive (it holds the file's lock) is left
// alone; once the writer is gone, killed without cleaning up, the next
// render removes it.
func TestStaleMeansNoLiveWriter(t *testing.T) {
	dir := t.TempDir()
	inFlight := filepath.Join(dir, tempPrefix+"app.conf-777")
	cmd := helper(t, "lock", "RENDER_TEST_PATH="+inFlight)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	if line, err := bufio.NewReader(stdout).ReadString('\n'); err != nil || line != "locked\n" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("helper: %q, %v", line, err)
	}

	dst := filepath.Join(dir, "app.conf")
	if _, err := WriteAll([]File{{Path: dst, Content: []byte("v1")}}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(inFlight); err != nil {
		t.Fatalf("a temp file in flight (its writer alive) was removed: %v", err)
	}

	// The writer dies without cleaning up: its lock goes with it.
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	if _, err := WriteAll([]File{{Path: dst, Content: []byte("v2")}}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(inFlight); !os.IsNotExist(err) {
		t.Errorf("a stale temp file (its writer dead) was left: %v", err)
	}
}
