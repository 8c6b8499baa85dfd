// Package i18n is the message catalog of the operator screens and the
// receipts: one table per language (English and Simplified Chinese,
// spec/terminal.md "Language"), indexed by message ID, plus the decline
// names of the acquirer's response codes.
//
// It is pure (no IO, no goroutines, no clock): the terminal core imports it
// and renders every word through Lang.T, so a screen reads
// l.T(i18n.MainMenu) instead of "MAIN MENU". The zero Lang is English.
//
// The display width of a line (a CJK character takes two columns) is a rule
// of the screen, and lives beside it in package hal (hal.Width).
package i18n

import "fmt"

// Lang is the language of the screens and receipts ([ui] lang).
type Lang uint8

// The languages of spec/terminal.md. English is the zero value, so a core
// that was never told its language shows the English words.
const (
	EN Lang = iota
	ZhCN
	numLangs
)

// Config values of [ui] lang.
const (
	ConfigEN   = "en"
	ConfigZhCN = "zh-CN"
)

// ParseLang returns the Lang of a [ui] lang value; the error names the
// accepted values.
func ParseLang(s string) (Lang, error) {
	switch s {
	case ConfigEN:
		return EN, nil
	case ConfigZhCN:
		return ZhCN, nil
	}
	return EN, fmt.Errorf("language %q: want %q or %q", s, ConfigEN, ConfigZhCN)
}

// Langs returns every language, English first.
func Langs() []Lang { return []Lang{EN, ZhCN} }

// String returns the config value: "en" or "zh-CN".
func (l Lang) String() string {
	switch l {
	case EN:
		return ConfigEN
	case ZhCN:
		return ConfigZhCN
	}
	return fmt.Sprintf("Lang(%d)", uint8(l))
}

// T returns the word of id in l. An unknown language falls back to
// English, an unknown id to "" (a test pins that every id has a word in
// every table).
func (l Lang) T(id Msg) string {
	if id >= numMsgs {
		return ""
	}
	if l >= numLangs {
		l = EN
	}
	return tables[l][id]
}

// F formats the format word of id (those whose English word holds a verb,
// such as UploadProgress) with args, in l.
func (l Lang) F(id Msg, args ...any) string { return fmt.Sprintf(l.T(id), args...) }

// Decline returns the name of the acquirer response code code in l, and
// false for a code without a name (the screen then shows the code alone).
func (l Lang) Decline(code string) (string, bool) {
	for _, d := range declines {
		if d.code == code {
			if l == ZhCN {
				return d.zh, true
			}
			return d.en, true
		}
	}
	return "", false
}

// DeclineCodes returns the response codes that have a name, in table order.
func DeclineCodes() []string {
	out := make([]string, len(declines))
	for i, d := range declines {
		out[i] = d.code
	}
	return out
}

// Text returns every word of every table and every decline name, in a
// fixed order: what a display font must cover (the framebuffer's glyph
// subset is generated from it).
func Text() []string {
	var out []string
	for _, l := range Langs() {
		out = append(out, tables[l][:]...)
	}
	for _, d := range declines {
		out = append(out, d.en, d.zh)
	}
	return out
}
