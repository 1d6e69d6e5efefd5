// Package logging sets up the structured logger of injector and
// injector-webhook the same way, from the same settings.
package logging

import (
	"fmt"
	"io"
	"os"

	"github.com/mattn/go-isatty"
	"github.com/rs/zerolog"
)

// Settings are the logging settings read from the environment (see
// internal/envconfig); the --log-level and --log-format flags default to
// them.
type Settings struct {
	Level  string `env:"INJECTOR_LOG_LEVEL" envDefault:"info"`
	Format string `env:"INJECTOR_LOG_FORMAT"`
}

// New returns a logger writing to w at level (debug, info, warn or error)
// in format: json, console, or "" for console on a terminal and json
// otherwise. The console format is coloured only on a terminal, and never
// when NO_COLOR is set (https://no-color.org), so a pipe or a log file
// gets no escape codes. The errors name the flags, for the command line.
func New(level, format string, w io.Writer) (zerolog.Logger, error) {
	lvl, err := zerolog.ParseLevel(level)
	if err != nil || level == "" {
		return zerolog.Nop(), fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	out := w
	terminal := false
	if f, ok := w.(*os.File); ok && isatty.IsTerminal(f.Fd()) {
		terminal = true
	}
	if format == "" {
		format = "json"
		if terminal {
			format = "console"
		}
	}
	switch format {
	case "json":
	case "console":
		colour := terminal && os.Getenv("NO_COLOR") == ""
		out = zerolog.ConsoleWriter{Out: w, TimeFormat: "15:04:05", NoColor: !colour}
	default:
		return zerolog.Nop(), fmt.Errorf("--log-format %q: want json or console", format)
	}
	return zerolog.New(out).Level(lvl).With().Timestamp().Logger(), nil
}
