package main

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// entry is one member of a tar stream, as read back.
type entry struct {
	hdr  tar.Header
	data []byte
}

func readTar(t *testing.T, r io.Reader) map[string]entry {
	t.Helper()
	out := map[string]entry{}
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		out[hdr.Name] = entry{*hdr, data}
	}
}

func testRootfs(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(root, "bin"), 0o755))
	must(os.WriteFile(filepath.Join(root, "bin", "app"), []byte("#!app\n"), 0o755))
	must(os.Chmod(filepath.Join(root, "bin", "app"), os.ModeSetuid|0o755)) // setuid survives
	must(os.Symlink("app", filepath.Join(root, "bin", "sh")))
	must(os.MkdirAll(filepath.Join(root, "etc"), 0o700))
	must(os.WriteFile(filepath.Join(root, "etc", "secret"), []byte("s"), 0o600))
	return root
}

func TestWriteDockerArchive(t *testing.T) {
	root := testRootfs(t)
	img := image{Name: "localhost/test/app:1", Entrypoint: []string{"/bin/app", "serve"},
		Env: []string{"A=b"}, User: "65532:65532", WorkingDir: "/", Arch: "amd64"}
	var buf bytes.Buffer
	if err := write(&buf, root, img); err != nil {
		t.Fatal(err)
	}
	outer := readTar(t, bytes.NewReader(buf.Bytes()))

	var manifest []struct {
		Config   string
		RepoTags []string
		Layers   []string
	}
	if err := json.Unmarshal(outer["manifest.json"].data, &manifest); err != nil {
		t.Fatalf("manifest.json: %v", err)
	}
	if len(manifest) != 1 || len(manifest[0].Layers) != 1 || len(manifest[0].RepoTags) != 1 || manifest[0].RepoTags[0] != img.Name {
		t.Fatalf("manifest = %+v", manifest)
	}
	configData, ok := outer[manifest[0].Config]
	if !ok {
		t.Fatalf("config %s missing", manifest[0].Config)
	}
	if sum := sha256.Sum256(configData.data); hex.EncodeToString(sum[:])+".json" != manifest[0].Config {
		t.Errorf("config name %s is not its digest", manifest[0].Config)
	}
	var config struct {
		Architecture, OS string
		Config           struct {
			Entrypoint, Env  []string
			User, WorkingDir string
		}
		RootFS struct {
			Type    string
			DiffIDs []string `json:"diff_ids"`
		}
	}
	if err := json.Unmarshal(configData.data, &config); err != nil {
		t.Fatal(err)
	}
	layer, ok := outer[manifest[0].Layers[0]]
	if !ok {
		t.Fatalf("layer %s missing", manifest[0].Layers[0])
	}
	sum := sha256.Sum256(layer.data)
	if want := "sha256:" + hex.EncodeToString(sum[:]); len(config.RootFS.DiffIDs) != 1 || config.RootFS.DiffIDs[0] != want {
		t.Errorf("diff_ids = %v, want [%s]", config.RootFS.DiffIDs, want)
	}
	if config.Architecture != "amd64" || config.OS != "linux" || config.RootFS.Type != "layers" ||
		strings.Join(config.Config.Entrypoint, " ") != "/bin/app serve" || config.Config.User != img.User ||
		strings.Join(config.Config.Env, " ") != "A=b" || config.Config.WorkingDir != "/" {
		t.Errorf("config = %+v", config)
	}

	files := readTar(t, bytes.NewReader(layer.data))
	want := map[string]struct {
		typ  byte
		mode int64
		data string
		link string
	}{
		"bin/":       {tar.TypeDir, 0o755, "", ""},
		"bin/app":    {tar.TypeReg, 0o4755, "#!app\n", ""},
		"bin/sh":     {tar.TypeSymlink, 0o777, "", "app"},
		"etc/":       {tar.TypeDir, 0o700, "", ""},
		"etc/secret": {tar.TypeReg, 0o600, "s", ""},
	}
	if len(files) != len(want) {
		t.Errorf("layer has %d entries, want %d", len(files), len(want))
	}
	for name, w := range want {
		f, ok := files[name]
		if !ok {
			t.Errorf("layer lacks %s", name)
			continue
		}
		h := f.hdr
		if h.Typeflag != w.typ || h.Mode != w.mode || string(f.data) != w.data || h.Linkname != w.link ||
			h.Uid != 0 || h.Gid != 0 || !h.ModTime.Equal(epoch) {
			t.Errorf("%s: type %c mode %o uid %d gid %d time %v link %q data %q", name,
				h.Typeflag, h.Mode, h.Uid, h.Gid, h.ModTime, h.Linkname, f.data)
		}
	}

	// Reproducible: the same tree gives the same bytes.
	var again bytes.Buffer
	if err := write(&again, root, img); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), again.Bytes()) {
		t.Error("two builds of the same tree differ")
	}
}

func TestWriteRejectsSpecialFiles(t *testing.T) {
	root := testRootfs(t)
	if err := syscall.Mkfifo(filepath.Join(root, "etc", "fifo"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := write(io.Discard, root, image{Name: "x:1"})
	if err == nil || !strings.Contains(err.Error(), "fifo") || !strings.Contains(err.Error(), "unsupported file type") {
		t.Fatalf("err = %v, want an unsupported-file-type error naming the fifo", err)
	}
}

func TestRunChecksArguments(t *testing.T) {
	root := testRootfs(t)
	out := filepath.Join(t.TempDir(), "img.tar")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-o", out, root}, "required"},
		{[]string{"-o", out, "-name", "localhost:5000/app", root}, "no tag"},
		{[]string{"-o", out, "-name", "app:1", "-env", "NOEQUALS", root}, "KEY=VALUE"},
		{[]string{"-o", out, "-name", "app:1", filepath.Join(root, "bin", "app")}, "not a directory"},
	} {
		if err := run(tc.args, io.Discard); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("run(%q) = %v, want error containing %q", tc.args, err, tc.want)
		}
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("a failed run left %s behind (%v)", out, err)
	}
	if err := run([]string{"-o", out, "-name", "localhost:5000/app:1", root, "/bin/app"}, io.Discard); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, ok := readTar(t, f)["manifest.json"]; !ok {
		t.Error("output has no manifest.json")
	}
}
