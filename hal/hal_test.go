package hal

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func TestKeyString(t *testing.T) {
	tests := []struct {
		k    Key
		want string
	}{
		{Key0, "0"}, {Key9, "9"}, {KeyEnter, "ENTER"}, {KeyCancel, "CANCEL"},
		{KeyClear, "CLEAR"}, {Key('a'), "Key(0x61)"},
	}
	for _, tt := range tests {
		if got := tt.k.String(); got != tt.want {
			t.Errorf("Key(%#x).String() = %q, want %q", byte(tt.k), got, tt.want)
		}
	}
	if Key7.Digit() != 7 || KeyEnter.Digit() != -1 || !Key0.IsDigit() || KeyClear.IsDigit() {
		t.Error("Digit/IsDigit wrong")
	}
}

func TestScreenValidate(t *testing.T) {
	tests := []struct {
		name    string
		lines   []string
		wantErr string
	}{
		{"empty", nil, ""},
		{"full", []string{strings.Repeat("A", 21), "2", "3", "4", "5", "6", "7", "8"}, ""},
		{"utf8 counts runes", []string{strings.Repeat("¥", 21)}, ""},
		{"nine lines", make([]string, 9), "9 lines"},
		{"22 columns", []string{strings.Repeat("A", 22)}, "line 1 has 22 columns"},
		{"ten CJK", []string{"确认撤销?" + strings.Repeat("中", 6)}, ""},
		{"eleven CJK", []string{strings.Repeat("中", 11)}, "line 1 has 22 columns"},
		{"escape", []string{"ok", "a\x1b[2Jb"}, "line 2 has control character"},
		{"newline", []string{"a\nb"}, "control character"},
		{"bad utf8", []string{"\xff"}, "not valid UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Screen{Lines: tt.lines}.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Validate() = %v, want error containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestFit(t *testing.T) {
	lines := []string{strings.Repeat("x", 30), "a\tb", "3", "4", "5", "6", "7", "8", "9", "10"}
	s := Fit(lines...)
	if err := s.Validate(); err != nil {
		t.Fatalf("Fit result invalid: %v", err)
	}
	if len(s.Lines) != MaxLines || s.Lines[0] != strings.Repeat("x", 21) || s.Lines[1] != "a b" {
		t.Fatalf("Fit = %q", s.Lines)
	}
	if !s.Contains("a b") || s.Contains("9") {
		t.Fatalf("Contains wrong on %q", s.Lines)
	}
}

func TestWrap(t *testing.T) {
	tests := []struct {
		text  string
		width int
		want  []string
	}{
		{"", 21, nil},
		{"NOT ACTIVATED", 21, []string{"NOT ACTIVATED"}},
		{"PA1234567890123456789012", 21, []string{"PA1234567890123456789", "012"}},
		{"SETTLE FAILED no response from host", 21, []string{"SETTLE FAILED no", "response from host"}},
		{"ab cd", 2, []string{"ab", "cd"}},
		{"abcdefg", 3, []string{"abc", "def", "g"}},
		// CJK takes two columns and breaks between any two characters.
		{"结算失败 主机无应答请稍后重试", 10, []string{"结算失败", "主机无应答", "请稍后重试"}},
		{"本人确认以上交易，同意将其记入本卡账户", 21, []string{"本人确认以上交易，同", "意将其记入本卡账户"}},
		{"A中文", 2, []string{"A", "中", "文"}},
	}
	for _, tt := range tests {
		got := Wrap(tt.text, tt.width)
		if fmt.Sprint(got) != fmt.Sprint(tt.want) {
			t.Errorf("Wrap(%q, %d) = %q, want %q", tt.text, tt.width, got, tt.want)
		}
	}
	if got := Truncate("héllo", 2); got != "hé" {
		t.Errorf("Truncate = %q", got)
	}
	// A wide character that would straddle the limit is left out whole.
	if got := Truncate("1 交易管理", 5); got != "1 交" {
		t.Errorf("Truncate CJK = %q", got)
	}
	for s, want := range map[string]int{"": 0, "MAIN MENU": 9, "主菜单": 6, "确认撤销?": 9, "读卡错误，请重刷": 16, "¥0.30": 5} {
		if got := Width(s); got != want {
			t.Errorf("Width(%q) = %d, want %d", s, got, want)
		}
	}
}

func TestParseTrack2(t *testing.T) {
	tests := []struct {
		line    string
		want    Track2
		wantErr error
		errText string
	}{
		{line: ";6222021234567890123=25121011234567890?\r\n", want: Track2{
			PAN: "6222021234567890123", Expiry: "2512", ServiceCode: "101", Discretionary: "1234567890",
			Raw: "6222021234567890123=25121011234567890"}},
		{line: ";4761739001010010=30122011143804400000?", want: Track2{
			PAN: "4761739001010010", Expiry: "3012", ServiceCode: "201", Discretionary: "1143804400000",
			Raw: "4761739001010010=30122011143804400000"}},
		{line: ";123456789012=2601101?\n", want: Track2{ // 12-digit PAN, no discretionary data
			PAN: "123456789012", Expiry: "2601", ServiceCode: "101", Raw: "123456789012=2601101"}},
		{line: ";6222021234567890=2512101?\r", want: Track2{ // Luhn not checked
			PAN: "6222021234567890", Expiry: "2512", ServiceCode: "101", Raw: "6222021234567890=2512101"}},
		{line: "", wantErr: ErrTrack2Format, errText: "empty"},
		{line: "6222021234567890=2512101?", wantErr: ErrTrack2Format, errText: "start sentinel"},
		{line: ";6222021234567890=2512101", wantErr: ErrTrack2Format, errText: "end sentinel"},
		{line: ";6222021234567890=2512101?5", wantErr: ErrTrack2Format, errText: "after the end sentinel"},
		{line: ";62220212345678902512101?", wantErr: ErrTrack2Format, errText: "separator"},
		{line: ";12345678901=2512101?", wantErr: ErrTrack2PAN, errText: "11 digits"},
		{line: ";12345678901234567890=2512101?", wantErr: ErrTrack2PAN, errText: "20 digits"},
		{line: ";62220212345A7890=2512101?", wantErr: ErrTrack2PAN, errText: "not all digits"},
		{line: ";6222021234567890=251210?", wantErr: ErrTrack2Format, errText: "service code"},
		{line: ";6222021234567890=2513101?", wantErr: ErrTrack2Format, errText: "month 13"},
		{line: ";6222021234567890=25121X1?", wantErr: ErrTrack2Format, errText: "non-digit"},
		{line: ";6222021234567890123=251210112345678901?", wantErr: ErrTrack2Format, errText: "38 data characters"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%q", tt.line), func(t *testing.T) {
			got, err := ParseTrack2(tt.line)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) || !strings.Contains(err.Error(), tt.errText) {
					t.Fatalf("err = %v, want %v containing %q", err, tt.wantErr, tt.errText)
				}
				if strings.Contains(err.Error(), "1234567") {
					t.Fatalf("error leaks PAN digits: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseTrack2: %v", err)
			}
			if got != tt.want {
				t.Fatalf("got %#v\nwant %#v", got, tt.want)
			}
		})
	}
}

func TestMaskPAN(t *testing.T) {
	tests := []struct{ pan, want string }{
		{"6222021234567890123", "622202*********0123"},
		{"4761739001010010", "476173******0010"},
		{"123456789012", "123456**9012"},
		{"12345678901", "*******8901"},
		{"12345", "*2345"},
		{"1234", "****"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := MaskPAN(tt.pan); got != tt.want {
			t.Errorf("MaskPAN(%q) = %q, want %q", tt.pan, got, tt.want)
		}
	}
}

func TestTrack2NeverPrintsPAN(t *testing.T) {
	tr, err := ParseTrack2(";6222021234567890123=25121011234567890?")
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	log.Info("swipe", "card", tr)
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("swipe", "card", tr)
	fmt.Fprintf(&buf, "%v %+v %#v %s", tr, tr, tr, tr)
	out := buf.String()
	if strings.Contains(out, "6222021234567890123") || strings.Contains(out, "1234567890?") || strings.Contains(out, "2512") {
		t.Fatalf("output leaks card data: %s", out)
	}
	if !strings.Contains(out, "622202*********0123") {
		t.Fatalf("output lacks masked PAN: %s", out)
	}
}

func TestConfig(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("default config invalid: %v", err)
	}
	c := DefaultConfig()
	c.Kind, c.Reboot, c.ConsoleBaud, c.Console = "bsd", "halt", 0, ""
	err := c.Validate()
	for _, want := range []string{"hal.kind", "hal.reboot", "hal.console_baud", "hal.console is empty"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v, want mention of %s", err, want)
		}
	}
}

func TestDevicesClose(t *testing.T) {
	var order []int
	d := &Devices{}
	boom := errors.New("boom")
	d.OnClose(func() error { order = append(order, 1); return nil })
	d.OnClose(func() error { order = append(order, 2); return boom })
	if err := d.Close(); !errors.Is(err, boom) {
		t.Fatalf("Close = %v, want boom", err)
	}
	if fmt.Sprint(order) != "[2 1]" {
		t.Fatalf("close order %v, want [2 1]", order)
	}
	if err := d.Close(); err != nil || len(order) != 2 {
		t.Fatalf("second Close = %v, order %v", err, order)
	}
	if !errors.Is(ExitRebooter{}.Reboot(), ErrRebootExit) {
		t.Fatal("ExitRebooter does not return ErrRebootExit")
	}
	if !errors.Is(NoPrinter{}.Print(Receipt{}), ErrNoPrinter) {
		t.Fatal("NoPrinter does not fail")
	}
}
