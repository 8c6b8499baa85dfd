package tomlconfig

import (
	"errors"
	"strings"
	"testing"
	"time"
)

type sample struct {
	Level string `toml:"level"`
	Sec   struct {
		Wait  Duration `toml:"wait"`
		Count int      `toml:"count"`
	} `toml:"sec"`
}

func TestDecode(t *testing.T) {
	def := func() sample { var s sample; s.Level = "info"; s.Sec.Wait = Duration{time.Second}; return s }
	s := def()
	if err := Decode([]byte("[sec]\nwait = \"250ms\"\n"), "x.toml", &s); err != nil {
		t.Fatal(err)
	}
	if s.Level != "info" || s.Sec.Wait.Duration != 250*time.Millisecond {
		t.Fatalf("defaults not kept or value not read: %+v", s)
	}
	for _, c := range []struct{ in, key, msg string }{
		{"[sec]\ncolor = 1\n", "sec.color", "unknown key"},
		{"[sec]\ncount = \"x\"\n", "sec.count", "incompatible"},
		{"[sec]\nwait = \"soon\"\n", "sec.wait", "not a duration"},
		{"level = \n", "level (line 1)", "expected value"},
		{"[sec\n", "line 2", "table name"},
	} {
		s := def()
		err := Decode([]byte(c.in), "x.toml", &s)
		var ce *Error
		if !errors.As(err, &ce) {
			t.Errorf("%q: %v, want an *Error", c.in, err)
			continue
		}
		if !strings.HasPrefix(ce.Key, c.key) || !strings.Contains(ce.Msg, c.msg) {
			t.Errorf("%q: key %q msg %q, want key %q and %q in the message", c.in, ce.Key, ce.Msg, c.key, c.msg)
		}
	}
}
