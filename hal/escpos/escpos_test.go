package escpos

import (
	"bytes"
	"errors"
	"testing"

	"github.com/posagent/posagent/hal"
)

func TestEncode(t *testing.T) {
	tests := []struct {
		name  string
		lines []string
		want  string
	}{
		{"empty", nil, "\x1b@\x1bd\x04\x1dV\x01"},
		{"lines", []string{"MERCHANT", "CARD 622202*********0123", ""}, "\x1b@MERCHANT\nCARD 622202*********0123\n\n\x1bd\x04\x1dV\x01"},
		{"control bytes neutralised", []string{"A\x1bB\x1dV\x00"}, "\x1b@A?B?V?\n\x1bd\x04\x1dV\x01"},
		{"non-ASCII one ? per rune", []string{"¥12.00"}, "\x1b@?12.00\n\x1bd\x04\x1dV\x01"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(Encode(hal.Receipt{Lines: tt.lines}, Options{})); got != tt.want {
				t.Fatalf("Encode = %q, want %q", got, tt.want)
			}
		})
	}
}

type drainWriter struct {
	bytes.Buffer
	writes, drains int
	err            error
}

func (w *drainWriter) Write(p []byte) (int, error) { w.writes++; return w.Buffer.Write(p) }
func (w *drainWriter) Drain() error                { w.drains++; return w.err }

func TestPrinter(t *testing.T) {
	var w drainWriter
	p := New(&w, Options{})
	if err := p.Print(hal.Receipt{Lines: []string{"X"}}); err != nil {
		t.Fatal(err)
	}
	if w.writes != 1 || w.drains != 1 || w.String() != "\x1b@X\n\x1bd\x04\x1dV\x01" {
		t.Fatalf("writes %d drains %d bytes %q", w.writes, w.drains, w.String())
	}
	w.err = errors.New("EIO")
	if err := p.Print(hal.Receipt{}); !errors.Is(err, w.err) {
		t.Fatalf("Print = %v, want drain error", err)
	}
}

// TestGB18030: Chinese receipts in GB18030, with FS & ... FS . around the
// text when the printer needs Chinese mode; ASCII stays ASCII, control
// characters stay neutralised.
func TestGB18030(t *testing.T) {
	r := hal.Receipt{Lines: []string{"交易类型 消费", "金额(RMB) 12.34", "A\x1bB", "€"}}
	got := Encode(r, Options{Encoding: GB18030, ChineseMode: true})
	want := "\x1b@\x1c&" +
		"\xbd\xbb\xd2\xd7\xc0\xe0\xd0\xcd \xcf\xfb\xb7\xd1\n" + // 交易类型 消费 (GB2312)
		"\xbd\xf0\xb6\xee(RMB) 12.34\n" + // 金额
		"A?B\n" +
		"\xa2\xe3\n" + // € is A2E3 in GB18030
		"\x1c.\x1bd\x04\x1dV\x01"
	if string(got) != want {
		t.Fatalf("Encode =\n%q\nwant\n%q", got, want)
	}
	plain := Encode(hal.Receipt{Lines: []string{"消费"}}, Options{Encoding: GB18030})
	if string(plain) != "\x1b@\xcf\xfb\xb7\xd1\n\x1bd\x04\x1dV\x01" {
		t.Fatalf("without Chinese mode: %q", plain)
	}
	if ascii := Encode(hal.Receipt{Lines: []string{"消费"}}, Options{ChineseMode: true}); string(ascii) != "\x1b@??\n\x1bd\x04\x1dV\x01" {
		t.Fatalf("ASCII: %q", ascii)
	}
	for s, want := range map[string]Encoding{"gb18030": GB18030, "ascii": ASCII} {
		if e, err := ParseEncoding(s); err != nil || e != want {
			t.Errorf("ParseEncoding(%q) = %v, %v", s, e, err)
		}
	}
	if _, err := ParseEncoding("utf8"); err == nil {
		t.Error("ParseEncoding accepted utf8")
	}
}
