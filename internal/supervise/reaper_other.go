//go:build unix && !linux

package supervise

import (
	"errors"
	"os/exec"
)

// Reaper is Linux-only: reaping re-parented orphans needs a subreaper
// (prctl) or PID 1, which only matters in Linux containers. Elsewhere a
// nil *Reaper just starts and waits for its commands.
type Reaper struct{}

// NewReaper reports that reaping is not available on this system.
func NewReaper(subreaper bool) (*Reaper, error) {
	return nil, errors.New("supervise: reaping orphaned processes needs Linux")
}

func (r *Reaper) Close() error { return nil }
func (r *Reaper) Reaped() int  { return 0 }

// Run runs cmd to completion.
func (r *Reaper) Run(cmd *exec.Cmd) error {
	if err := cmd.Start(); err != nil {
		return err
	}
	return cmd.Wait()
}

func (r *Reaper) start(cmd *exec.Cmd) (release func(), err error) {
	return func() {}, cmd.Start()
}
