package terminal

import (
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/posagent/posagent/hal"
	"github.com/posagent/posagent/terminal/i18n"
)

// The Chinese terminal (spec/terminal.md "Language"), proved on the
// transcripts: every transcript is played again with the machine in
// zh-CN, and
//
//   - every screen and receipt is checked for English: a run of Latin
//     letters is allowed only for a code (A0, MAC, RMB) or a datum the
//     terminal shows as it is (the serial, the merchant's name);
//   - no screen line is cut to fit: a zh-CN screen is laid out to fit 21
//     columns (a CJK character takes two) and 8 lines;
//   - an `expect` of an English word of the spec's table waits for its
//     Chinese word on the same screen (and the digits of the expect, such
//     as an amount or a voucher number, stay);
//   - every word of the spec's table is checked on some screen or
//     receipt this way, so a word no transcript reaches fails the test.
//
// The key transcripts keep a reviewed golden of their Chinese run
// (NAME.zh-CN.golden, written with -update like the English ones).
var zhGoldens = map[string]bool{
	"sale_void": true, "settle": true, "unbind": true, "activation": true, "pwdlock": true, "paper_out": true, "unbind_device": true,
}

func TestTranscriptsZhCN(t *testing.T) {
	scripts, err := filepath.Glob("testdata/transcripts/*.txt")
	if err != nil || len(scripts) == 0 {
		t.Fatalf("no transcripts found: %v", err)
	}
	pairs := specPairs(t)
	seen := map[string]bool{}
	for _, script := range scripts {
		name := strings.TrimSuffix(filepath.Base(script), ".txt")
		t.Run(name, func(t *testing.T) {
			zh := &zhRun{pairs: pairs, seen: seen}
			got := runTranscript(t, script, zh)
			if !zhGoldens[name] {
				return
			}
			golden := strings.TrimSuffix(script, ".txt") + ".zh-CN.golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("zh-CN run of %s differs from %s (run with -update and review the diff):\n%s", script, golden, diffLines(string(want), got))
			}
		})
	}
	for _, p := range pairs {
		if p.spec && !seen[p.en] {
			t.Errorf("spec word %q (%s) is checked on no zh-CN screen: add an expect of it to a transcript", p.en, p.zh)
		}
	}
}

// specPair is an English word and its Chinese word; spec marks the words
// of spec/terminal.md's table and title list (the decline names are
// looked up too, but the spec lists them by code).
type specPair struct {
	en, zh string
	spec   bool
}

var (
	specTableRow  = regexp.MustCompile("^\\| `([^`]+)`[^|]*\\| `([^`]+)` \\| \\| `([^`]+)` \\| `([^`]+)` \\|$")
	specTitlePair = regexp.MustCompile("([A-Z][A-Z ]*[A-Z]) `([^`]+)`")
)

// specPairs reads the spec's words from the verbatim copy of its section
// "Language" that package i18n pins, longest English word first (so "1
// VOUCHER NO" is taken before "VOUCHER NO").
func specPairs(t *testing.T) []specPair {
	t.Helper()
	b, err := os.ReadFile("i18n/testdata/language.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	var out []specPair
	for _, line := range strings.Split(doc, "\n") {
		if m := specTableRow.FindStringSubmatch(line); m != nil {
			out = append(out, specPair{m[1], m[2], true}, specPair{m[3], m[4], true})
		}
	}
	titles := doc[strings.Index(doc, "Menu and flow titles:"):strings.Index(doc, "`FAILED` in a word")]
	for _, m := range specTitlePair.FindAllStringSubmatch(titles, -1) {
		out = append(out, specPair{m[1], m[2], true})
	}
	if len(out) != 61 {
		t.Fatalf("parsed %d words of the spec's section, want 61", len(out))
	}
	for _, c := range i18n.DeclineCodes() {
		en, _ := i18n.EN.Decline(c)
		zh, _ := i18n.ZhCN.Decline(c)
		out = append(out, specPair{en: en, zh: zh})
	}
	sort.SliceStable(out, func(i, j int) bool { return len(out[i].en) > len(out[j].en) })
	return out
}

// zhRun checks one transcript played in zh-CN.
type zhRun struct {
	pairs []specPair
	seen  map[string]bool // spec words checked on a Chinese screen
}

// zhCodes are the Latin letters a Chinese screen or receipt may show: a
// response code and the words the acquirer's world writes in Latin
// letters in Chinese too.
var zhCodes = map[string]bool{"A0": true, "MAC": true, "RMB": true}

// latinWord is a token with a Latin letter in it ("A0", "PA00000001").
var latinWord = regexp.MustCompile(`[A-Za-z0-9]*[A-Za-z][A-Za-z0-9]*`)

// checkText fails on English in what the Chinese terminal shows or prints.
func (z *zhRun) checkText(t *testing.T, what string, lines []string, store *MemStore) {
	t.Helper()
	// The data as the terminal holds it; a screen may wrap it (a long
	// serial on two lines), so a piece of it is data too.
	data := []string{store.Base.Serial, "TEST SHOP"}
	if st, err := store.Load(); err == nil && st.Merchant.Name != "" {
		data = append(data, st.Merchant.Name)
	}
	isData := func(w string) bool {
		for _, d := range data {
			if strings.Contains(d, w) {
				return true
			}
		}
		return false
	}
	for _, l := range lines {
		for _, w := range latinWord.FindAllString(l, -1) {
			if !zhCodes[w] && !isData(w) {
				t.Errorf("zh-CN %s shows English %q in %q:\n%s", what, w, l, strings.Join(lines, "\n"))
			}
		}
	}
}

// checkFits fails when the machine's screen (before the display cuts it)
// does not fit the display: a Chinese line longer than 21 columns would
// lose its end, maybe the word a harness waits for.
func (z *zhRun) checkFits(t *testing.T, m *Machine) {
	t.Helper()
	if len(m.views) == 0 || m.halted {
		return
	}
	s := m.devices.onScreen(m, m.top().render(m))
	if len(s.Lines) > Rows {
		t.Errorf("zh-CN screen has %d lines, the display %d:\n%s", len(s.Lines), Rows, s)
	}
	for _, l := range s.Lines {
		if w := hal.Width(l); w > Cols {
			t.Errorf("zh-CN line %q is %d columns, the display %d", l, w, Cols)
		}
	}
}

// expect is the Chinese run's `expect arg`: each English word of the
// spec in arg must be on the screen as its Chinese word, within one line,
// and each token of arg without letters (amounts, vouchers, masked PANs)
// as it is.
func (z *zhRun) expect(t *testing.T, where, arg string, lines []string) {
	t.Helper()
	onOneLine := func(s string) bool {
		for _, l := range lines {
			if strings.Contains(l, s) {
				return true
			}
		}
		return false
	}
	rest := " " + strings.Join(strings.Fields(arg), " ") + " "
	for _, p := range z.pairs {
		if !strings.Contains(rest, " "+p.en+" ") {
			continue
		}
		rest = strings.ReplaceAll(rest, " "+p.en+" ", "  ")
		if !onOneLine(p.zh) {
			t.Errorf("%s: expect %q: the zh-CN screen lacks %q (for %q):\n%s", where, arg, p.zh, p.en, strings.Join(lines, "\n"))
			continue
		}
		if p.spec {
			z.seen[p.en] = true
		}
	}
	for _, tok := range strings.Fields(rest) {
		if !latinWord.MatchString(tok) && !onOneLine(tok) {
			t.Errorf("%s: expect %q: the zh-CN screen lacks %q:\n%s", where, arg, tok, strings.Join(lines, "\n"))
		}
	}
}
