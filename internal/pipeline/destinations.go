package pipeline

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/injector-dev/injector/internal/render"
	"github.com/injector-dev/injector/internal/template"
)

// Stdout is the destination that prints a template instead of writing a
// file: -t SRC:-.
const Stdout = "-"

// checkDestinations rejects destinations that could not be kept: anything
// render.CheckDestination refuses (a link, a device, a directory…), the
// same file named twice (in daemon mode two templates would take turns
// replacing it, firing its change actions at every interval), and stdout
// where printing is not what the command does. With noWrite (check)
// nothing is written, so stdout and the null device are fine.
func checkDestinations(files []File, stdout, noWrite bool) template.Errors {
	var errs template.Errors
	first := map[string]File{}
	for _, f := range files {
		if f.Dst == Stdout {
			if !stdout && !noWrite {
				errs = append(errs, fmt.Errorf("template %s: destination - (stdout) is only for injector render without --interval: elsewhere stdout carries logs or the command's output", f.Src))
			}
			continue
		}
		if noWrite && f.Dst == os.DevNull {
			continue
		}
		if err := render.CheckDestination(f.Dst); err != nil {
			errs = append(errs, fmt.Errorf("template %s: %w", f.Src, err))
			continue
		}
		key := sameFileKey(f.Dst)
		if prev, ok := first[key]; ok {
			errs = append(errs, fmt.Errorf("template %s: destination %s is the same file as %s, the destination of template %s; give each file one template", f.Src, f.Dst, prev.Dst, prev.Src))
			continue
		}
		first[key] = f
	}
	return errs
}

// sameFileKey returns a name that two spellings of one destination share:
// absolute, cleaned ("d/./out" is "d/out"), and with the symbolic links
// of its existing directories resolved (a link to d is d). The last
// element is never a link: checkDestinations rejects those.
func sameFileKey(path string) string {
	abs, err := filepath.Abs(path)
	if err != nil {
		return filepath.Clean(path)
	}
	// Resolve the deepest directory that exists; the rest is yet to be
	// created, so holds no links.
	for dir := filepath.Dir(abs); ; dir = filepath.Dir(dir) {
		if real, err := filepath.EvalSymlinks(dir); err == nil {
			rest, _ := filepath.Rel(dir, abs)
			return filepath.Join(real, rest)
		}
		if dir == filepath.Dir(dir) {
			return abs
		}
	}
}
