package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestJournalPriorities(t *testing.T) {
	t.Setenv("JOURNAL_STREAM", "8:1234")
	var buf bytes.Buffer
	log := newLogger(&buf, "debug").With("part", "test")
	log.Debug("d")
	log.Info("i")
	log.Warn("w")
	log.Error("e")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	want := []string{"<7>", "<6>", "<4>", "<3>"}
	if len(lines) != len(want) {
		t.Fatalf("lines: %q", lines)
	}
	for i, l := range lines {
		if !strings.HasPrefix(l, want[i]) || !strings.Contains(l, "part=test") {
			t.Errorf("line %d = %q, want prefix %s", i, l, want[i])
		}
	}
	t.Setenv("JOURNAL_STREAM", "")
	buf.Reset()
	newLogger(&buf, "info").Info("plain")
	if strings.HasPrefix(buf.String(), "<") {
		t.Errorf("priority prefix outside journald: %q", buf.String())
	}
}
