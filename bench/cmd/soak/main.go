// Command soak measures the steady-state memory of injector's refresh
// cycle: it runs N cycles of resolve + render + atomic write against a
// Passwork server, exactly what daemon mode repeats every interval, and
// prints the process's VmRSS from /proc/self/status. The emulator runs in
// the parent (bench), so its memory is not counted.
//
// Usage: PASSWORK_URL=… PASSWORK_TOKEN=… PASSWORK_REFRESH_TOKEN=… PASSWORK_MASTER_KEY=… \
//
//	soak -cycles 1000 -t SRC:DST
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/injector-dev/injector/internal/fetch"
	"github.com/injector-dev/injector/internal/fetch/passwork"
	"github.com/injector-dev/injector/internal/render"
	"github.com/injector-dev/injector/internal/template"
)

func main() {
	cycles := flag.Int("cycles", 1000, "refresh cycles to run")
	spec := flag.String("t", "", "template SRC:DST")
	flag.Parse()
	if err := soak(*cycles, *spec); err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(1)
	}
}

func soak(cycles int, spec string) error {
	src, dst, ok := strings.Cut(spec, ":")
	if !ok {
		return fmt.Errorf("-t %q: want SRC:DST", spec)
	}
	text, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	tpl, err := template.Parse(template.Source{Name: src}, string(text), template.DefaultDelims)
	if err != nil {
		return err
	}
	pw, err := passwork.New(passwork.Config{
		URL: os.Getenv("PASSWORK_URL"), API: "v1", Token: os.Getenv("PASSWORK_TOKEN"),
		RefreshToken: os.Getenv("PASSWORK_REFRESH_TOKEN"), MasterKey: os.Getenv("PASSWORK_MASTER_KEY"),
	}, fetch.Options{})
	if err != nil {
		return err
	}
	e := &template.Engine{Providers: map[string]template.Resolver{"passwork": pw}}
	ctx := context.Background()
	for i := 0; i < cycles; i++ {
		out, err := e.Render(ctx, []*template.Template{tpl})
		if err != nil {
			return fmt.Errorf("cycle %d: %w", i, err)
		}
		if _, err := render.WriteAll([]render.File{{Path: dst, Content: out.Outputs[0], Mode: render.DefaultMode}}); err != nil {
			return fmt.Errorf("cycle %d: %w", i, err)
		}
	}
	rss, err := vmRSS()
	if err != nil {
		return err
	}
	fmt.Printf("cycles=%d VmRSS=%d kB\n", cycles, rss)
	return nil
}

// vmRSS returns the resident set size in kB.
func vmRSS() (int, error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			var kb int
			_, err := fmt.Sscanf(strings.TrimSpace(v), "%d kB", &kb)
			return kb, err
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/self/status")
}
