// Package tomlconfig decodes the daemons' TOML configuration files the
// one way both posagentd and hqd promise their operators: over the
// defaults, unknown keys refused, and every error naming the key (or the
// line) to fix, so the one line on stderr says exactly what is wrong.
package tomlconfig

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// Error names the offending key.
type Error struct {
	Key string
	Msg string
}

func (e *Error) Error() string { return fmt.Sprintf("config: %s: %s", e.Key, e.Msg) }

// lastKeyInError finds the key in BurntSushi/toml's type-mismatch errors,
// which are plain errors ("toml: line 3 (last key "hal.console_baud"): …").
var lastKeyInError = regexp.MustCompile(`last key "([^"]+)"`)

// Decode decodes TOML b into v, which holds the defaults already; name is
// the file's name for errors that have no key.
func Decode(b []byte, name string, v any) error {
	md, err := toml.Decode(string(b), v)
	if err != nil {
		var perr toml.ParseError
		if errors.As(err, &perr) {
			// A syntax error names its line, and the last key read
			// before it when there is one.
			key := fmt.Sprintf("line %d", perr.Position.Line)
			if perr.LastKey != "" {
				key = fmt.Sprintf("%s (line %d)", perr.LastKey, perr.Position.Line)
			}
			return &Error{Key: key, Msg: firstLine(perr.Message)}
		}
		if m := lastKeyInError.FindStringSubmatch(err.Error()); m != nil {
			msg := firstLine(err.Error())
			if i := strings.Index(msg, "): "); i >= 0 {
				msg = msg[i+3:]
			}
			return &Error{Key: m[1], Msg: msg}
		}
		return fmt.Errorf("config %s: %s", name, firstLine(err.Error()))
	}
	if und := md.Undecoded(); len(und) > 0 {
		return &Error{Key: und[0].String(), Msg: "unknown key"}
	}
	return nil
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return strings.TrimSpace(s)
}

// Duration is a time.Duration written as a Go duration string ("30s").
type Duration struct{ time.Duration }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("not a duration (e.g. \"30s\"): %q", b)
	}
	d.Duration = v
	return nil
}

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }
