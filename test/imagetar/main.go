// Command imagetar packs a directory into a one-layer container image tarball
// in the `docker save` layout (manifest.json, an image config, a layer tar),
// which both `ctr images import` and `docker load` accept. The test node of
// scripts/k8s-node uses it to make its pause image and small test images
// with no registry and no Docker engine:
//
//	imagetar -o pause.tar -name localhost/k8s-node/pause:1 ROOTFS /pause
//
// Arguments after ROOTFS are the image's entrypoint. The layer is
// reproducible: entries in lexical order, owned by root, with a fixed time.
// Only directories, regular files and symlinks are packed; anything else is
// an error rather than a silently incomplete image.
package main

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// image is what goes into the tarball besides the layer.
type image struct {
	Name       string   // repository:tag
	Entrypoint []string // may be empty
	Cmd        []string
	Env        []string // KEY=VALUE
	User       string
	WorkingDir string
	Arch       string
}

// epoch is the time of every entry: images built from the same files match.
var epoch = time.Unix(0, 0).UTC()

func main() {
	if err := run(os.Args[1:], os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "imagetar:", err)
		os.Exit(1)
	}
}

type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

func run(args []string, stderr io.Writer) error {
	var img image
	var cmd, env listFlag
	fl := flag.NewFlagSet("imagetar", flag.ContinueOnError)
	fl.SetOutput(stderr)
	out := fl.String("o", "", "output tarball (required)")
	fl.StringVar(&img.Name, "name", "", "image name, repository:tag (required)")
	fl.Var(&cmd, "cmd", "an argument of the image's CMD (repeatable)")
	fl.Var(&env, "env", "KEY=VALUE in the image's environment (repeatable)")
	fl.StringVar(&img.User, "user", "", "user (uid[:gid]) the image runs as")
	fl.StringVar(&img.WorkingDir, "workdir", "", "working directory")
	fl.StringVar(&img.Arch, "arch", runtime.GOARCH, "architecture recorded in the config")
	fl.Usage = func() {
		fmt.Fprintln(fl.Output(), "usage: imagetar -o OUT.tar -name REPO:TAG [flags] ROOTFS [ENTRYPOINT...]")
		fl.PrintDefaults()
	}
	if err := fl.Parse(args); err != nil {
		return err
	}
	if *out == "" || img.Name == "" || fl.NArg() < 1 {
		fl.Usage()
		return errors.New("-o, -name and ROOTFS are required")
	}
	if !strings.Contains(img.Name[strings.LastIndex(img.Name, "/")+1:], ":") {
		return fmt.Errorf("image name %q has no tag", img.Name)
	}
	for _, kv := range env {
		if !strings.Contains(kv, "=") {
			return fmt.Errorf("-env %q: want KEY=VALUE", kv)
		}
	}
	img.Cmd, img.Env, img.Entrypoint = cmd, env, fl.Args()[1:]

	var buf bytes.Buffer
	if err := write(&buf, fl.Arg(0), img); err != nil {
		return err
	}
	tmp := *out + ".tmp"
	if err := os.WriteFile(tmp, buf.Bytes(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, *out)
}

// write packs rootfs as the single layer of img into w.
func write(w io.Writer, rootfs string, img image) error {
	var layer bytes.Buffer
	if err := packLayer(&layer, rootfs); err != nil {
		return err
	}
	layerSum := sha256.Sum256(layer.Bytes())
	layerHex := hex.EncodeToString(layerSum[:])

	type containerConfig struct {
		Entrypoint []string `json:",omitempty"`
		Cmd        []string `json:",omitempty"`
		Env        []string `json:",omitempty"`
		User       string   `json:",omitempty"`
		WorkingDir string   `json:",omitempty"`
	}
	config, err := json.Marshal(map[string]any{
		"architecture": img.Arch,
		"os":           "linux",
		"created":      epoch,
		"config": containerConfig{
			Entrypoint: img.Entrypoint, Cmd: img.Cmd, Env: img.Env,
			User: img.User, WorkingDir: img.WorkingDir,
		},
		"rootfs":  map[string]any{"type": "layers", "diff_ids": []string{"sha256:" + layerHex}},
		"history": []map[string]any{{"created": epoch, "created_by": "imagetar"}},
	})
	if err != nil {
		return err
	}
	configSum := sha256.Sum256(config)
	configName := hex.EncodeToString(configSum[:]) + ".json"
	layerName := layerHex + "/layer.tar"
	manifest, err := json.Marshal([]map[string]any{{
		"Config": configName, "RepoTags": []string{img.Name}, "Layers": []string{layerName},
	}})
	if err != nil {
		return err
	}

	tw := tar.NewWriter(w)
	for _, f := range []struct {
		name string
		data []byte
	}{{configName, config}, {layerName, layer.Bytes()}, {"manifest.json", manifest}} {
		if dir := filepath.Dir(f.name); dir != "." {
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: dir + "/", Mode: 0o755, ModTime: epoch}); err != nil {
				return err
			}
		}
		hdr := &tar.Header{Typeflag: tar.TypeReg, Name: f.name, Mode: 0o644, Size: int64(len(f.data)), ModTime: epoch}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if _, err := tw.Write(f.data); err != nil {
			return err
		}
	}
	return tw.Close()
}

// packLayer writes the tree under rootfs as a layer tar: paths relative to
// rootfs, permission bits kept, owner root, time epoch.
func packLayer(w io.Writer, rootfs string) error {
	info, err := os.Stat(rootfs)
	if err != nil {
		return err
	}
	if !info.IsDir() {
		return fmt.Errorf("%s: not a directory", rootfs)
	}
	tw := tar.NewWriter(w)
	err = filepath.WalkDir(rootfs, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(rootfs, path)
		if err != nil || rel == "." {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		hdr := &tar.Header{
			Name:    filepath.ToSlash(rel),
			Mode:    int64(info.Mode().Perm()),
			ModTime: epoch,
		}
		if info.Mode()&fs.ModeSetuid != 0 {
			hdr.Mode |= 0o4000
		}
		if info.Mode()&fs.ModeSetgid != 0 {
			hdr.Mode |= 0o2000
		}
		if info.Mode()&fs.ModeSticky != 0 {
			hdr.Mode |= 0o1000
		}
		switch {
		case info.Mode().IsDir():
			hdr.Typeflag, hdr.Name = tar.TypeDir, hdr.Name+"/"
		case info.Mode().IsRegular():
			hdr.Typeflag, hdr.Size = tar.TypeReg, info.Size()
		case info.Mode()&fs.ModeSymlink != 0:
			hdr.Typeflag = tar.TypeSymlink
			if hdr.Linkname, err = os.Readlink(path); err != nil {
				return err
			}
		default:
			return fmt.Errorf("%s: unsupported file type %s", path, info.Mode().Type())
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		if hdr.Typeflag != tar.TypeReg {
			return nil
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		if n, err := io.Copy(tw, f); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		} else if n != hdr.Size {
			return fmt.Errorf("%s: changed while packing", path)
		}
		return nil
	})
	if err != nil {
		return err
	}
	return tw.Close()
}
