package i18n

import (
	"os"
	"regexp"
	"strings"
	"testing"
	"unicode"

	"github.com/posagent/posagent/hal"
)

// specWord says how the catalog produces one word of spec/terminal.md's
// table: the word of id, after "<digit> " for a menu item.
type specWord struct {
	id   Msg
	item byte // menu key, 0 = not an item
}

// specWords maps every English word of the spec's table (and its list of
// menu and flow titles) to the catalog. A spec word missing here fails the
// test, so a new row in the spec cannot go unnoticed.
var specWords = map[string]specWord{
	"NOT ACTIVATED":         {NotActivated, 0},
	"1 ACTIVATE":            {Activate, '1'},
	"MAIN MENU":             {MainMenu, 0},
	"1 SALE":                {Sale, '1'},
	"2 TRANSACTION MGMT":    {TxnMgmt, '2'},
	"3 SETTLEMENT":          {Settlement, '3'},
	"4 SIGN IN":             {SignIn, '4'},
	"5 TECHNICIAN":          {Technician, '5'},
	"1 VOID":                {Void, '1'},
	"2 JOURNAL":             {Journal, '2'},
	"3 REPRINT LAST":        {ReprintLast, '3'},
	"AMOUNT":                {Amount, 0},
	"SWIPE CARD":            {SwipeCard, 0},
	"PROCESSING":            {Processing, 0},
	"APPROVED":              {Approved, 0},
	"DECLINED":              {Declined, 0},
	"ERROR":                 {Error, 0},
	"SUPERVISOR PWD":        {SupervisorPwd, 0},
	"VOID BY":               {VoidBy, 0},
	"1 VOUCHER NO":          {ItemVoucherNo, '1'},
	"2 TIME":                {Time, '2'},
	"VOUCHER NO":            {VoucherNo, 0},
	"TIME":                  {Time, 0},
	"DUPLICATE":             {RcptDuplicate, 0},
	"SERIAL":                {Serial, 0},
	"ACTIVATION FAILED":     {ActivationFail, 0},
	"VOID?":                 {VoidConfirm, 0},
	"NOT FOUND":             {NotFound, 0},
	"ALREADY VOIDED":        {AlreadyVoided, 0},
	"NOT VOIDABLE":          {NotVoidable, 0},
	"WRONG PWD":             {WrongPwd, 0},
	"LOCKED":                {Locked, 0},
	"SETTLE BATCH?":         {SettleBatch, 0},
	"SETTLED":               {Settled, 0},
	"SETTLED UPLOADED":      {SettledUploaded, 0},
	"SETTLE FAILED":         {SettleFailed, 0},
	"SETTLE FIRST":          {SettleFirst, 0},
	"SIGNED IN":             {SignedIn, 0},
	"SIGN IN FAILED":        {SignInFailed, 0},
	"TECH PWD":              {TechPwd, 0},
	"1 UNBIND":              {Unbind, '1'},
	"UNBIND?":               {UnbindConfirm, 0},
	"UNBINDING":             {Unbinding, 0},
	"REBOOTING":             {Rebooting, 0},
	"2 INFO":                {Info, '2'},
	"3 SUPERVISOR PWD":      {ItemSupervisorPwd, '3'},
	"ACTIVATION CODE":       {ActivationCode, 0},
	"WAITING FOR HQ":        {WaitingForHQ, 0},
	"SIGNING IN":            {SigningIn, 0},
	"SWIPE SETTLEMENT CARD": {SwipeSettleCard, 0},
	"ACTIVATED":             {Activated, 0},
	"NO ANSWER FROM HQ":     {NoAnswerFromHQ, 0},
	// Menu and flow titles.
	"TRANSACTION MGMT": {TxnMgmt, 0},
	"TECHNICIAN":       {Technician, 0},
	"SALE":             {Sale, 0},
	"VOID":             {Void, 0},
	"SETTLEMENT":       {Settlement, 0},
	"SIGN IN":          {SignIn, 0},
	"ACTIVATE":         {Activate, 0},
	"JOURNAL":          {Journal, 0},
	"UNBIND":           {Unbind, 0},
}

func (w specWord) render(l Lang) string {
	if w.item != 0 {
		return string(w.item) + " " + l.T(w.id)
	}
	return l.T(w.id)
}

// language is a verbatim copy of spec/terminal.md's section "Language".
func language(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("testdata/language.md")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

var (
	tableRow  = regexp.MustCompile("^\\| `([^`]+)`[^|]*\\| `([^`]+)` \\| \\| `([^`]+)` \\| `([^`]+)` \\|$")
	titlePair = regexp.MustCompile("([A-Z][A-Z ]*[A-Z]) `([^`]+)`")
	decline   = regexp.MustCompile(`\b([0-9A-Z]{2}) ([^ ,.]+)`)
)

// TestSpecTable: every zh-CN word of the spec's table, its menu and flow
// titles and its decline names is what the catalog shows, exactly, and the
// English column is the English table's word.
func TestSpecTable(t *testing.T) {
	doc := language(t)
	rows := 0
	pairs := map[string]string{}
	for _, line := range strings.Split(doc, "\n") {
		if m := tableRow.FindStringSubmatch(line); m != nil {
			pairs[m[1]], pairs[m[3]] = m[2], m[4]
			rows++
		}
	}
	if rows != 26 {
		t.Fatalf("parsed %d table rows of the spec, want 26", rows)
	}
	titles := doc[strings.Index(doc, "Menu and flow titles:"):strings.Index(doc, "`FAILED` in a word")]
	for _, m := range titlePair.FindAllStringSubmatch(titles, -1) {
		pairs[m[1]] = m[2]
	}
	if len(pairs) != 61 { // 52 in the table, 9 titles
		t.Errorf("parsed %d spec words, want 61", len(pairs))
	}
	for en, zh := range pairs {
		w, ok := specWords[en]
		if !ok {
			t.Errorf("spec word %q (%s) has no catalog entry in specWords", en, zh)
			continue
		}
		if got := w.render(EN); got != en {
			t.Errorf("en %q: catalog shows %q", en, got)
		}
		if got := w.render(ZhCN); got != zh {
			t.Errorf("zh-CN of %q: catalog shows %q, spec says %q", en, got, zh)
		}
	}

	// "FAILED in a word is 失败".
	for id := range numMsgs {
		if strings.Contains(EN.T(id), "FAILED") && !strings.Contains(ZhCN.T(id), "失败") {
			t.Errorf("%q is %q in zh-CN: FAILED must be 失败", EN.T(id), ZhCN.T(id))
		}
	}

	decl := doc[strings.Index(doc, "Decline names in zh-CN:"):strings.Index(doc, "Receipts in zh-CN")]
	decl = strings.TrimPrefix(decl, "Decline names in zh-CN:")
	n := 0
	for _, m := range decline.FindAllStringSubmatch(decl, -1) {
		n++
		got, ok := ZhCN.Decline(m[1])
		if !ok || got != m[2] {
			t.Errorf("decline %s: catalog %q, spec %q", m[1], got, m[2])
		}
		if en, ok := EN.Decline(m[1]); !ok || en == "" {
			t.Errorf("decline %s has no English name", m[1])
		}
	}
	if n != 9 || len(DeclineCodes()) != n {
		t.Errorf("spec names %d declines, catalog %d", n, len(DeclineCodes()))
	}

	// Every receipt word of the spec is a zh-CN receipt word (spaces aside:
	// the spec writes "金额 (RMB)").
	rcpt := doc[strings.Index(doc, "Receipts in zh-CN carry"):]
	rcpt = strings.TrimPrefix(rcpt, "Receipts in zh-CN carry")
	var zhRcpt []string
	for id := RcptMerchantName; id < numMsgs; id++ {
		zhRcpt = append(zhRcpt, ZhCN.T(id))
	}
	zhRcpt = append(zhRcpt, ZhCN.T(Sale), ZhCN.T(Void))
	for _, w := range strings.FieldsFunc(rcpt, func(r rune) bool { return r == ',' || r == '/' || r == '\n' }) {
		w = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(w), "."))
		w = strings.TrimPrefix(w, "and ")
		w = strings.TrimSuffix(w, " on the merchant copy")
		w = strings.ReplaceAll(w, " ", "")
		if strings.Count(w, "(") != strings.Count(w, ")") { // "(消费/撤销)" split on "/"
			w = strings.Trim(w, "()")
		}
		found := false
		for _, z := range zhRcpt {
			if z == w {
				found = true
			}
		}
		if !found {
			t.Errorf("receipt word %q of the spec is not a zh-CN receipt word", w)
		}
	}
}

// asciiWord is a run of Latin letters in a zh-CN word.
var asciiWord = regexp.MustCompile(`[A-Za-z]+`)

// TestNoEnglishInChinese: a zh-CN word holds no Latin letters but codes
// (MAC, RMB); digits, format verbs and the ASCII "?" are allowed.
func TestNoEnglishInChinese(t *testing.T) {
	codes := map[string]bool{"MAC": true, "RMB": true}
	verb := regexp.MustCompile(`%[a-z]`)
	check := func(what, s string) {
		for _, w := range asciiWord.FindAllString(verb.ReplaceAllString(s, ""), -1) {
			if !codes[w] {
				t.Errorf("%s: zh-CN %q has English %q", what, s, w)
			}
		}
		if !strings.ContainsFunc(s, func(r rune) bool { return unicode.Is(unicode.Han, r) }) {
			t.Errorf("%s: zh-CN %q has no Chinese character", what, s)
		}
	}
	for id := range numMsgs {
		check(EN.T(id), ZhCN.T(id))
	}
	for _, c := range DeclineCodes() {
		zh, _ := ZhCN.Decline(c)
		check("decline "+c, zh)
	}
}

// TestEveryWordInEveryLanguage: no empty entry, the same format verbs in
// both languages, and screen words fit one 21-column line (a menu item
// with its "n " prefix); receipt words may wrap.
func TestEveryWordInEveryLanguage(t *testing.T) {
	items := map[Msg]bool{}
	for _, w := range specWords {
		if w.item != 0 {
			items[w.id] = true
		}
	}
	verbs := regexp.MustCompile(`%[a-z]`)
	for id := range numMsgs {
		en, zh := EN.T(id), ZhCN.T(id)
		if en == "" || zh == "" {
			t.Errorf("message %d: en %q, zh-CN %q: every word needs both", id, en, zh)
			continue
		}
		if a, b := verbs.FindAllString(en, -1), verbs.FindAllString(zh, -1); strings.Join(a, "") != strings.Join(b, "") {
			t.Errorf("%q: verbs %v in en, %v in zh-CN", en, a, b)
		}
		if id >= RcptMerchantName {
			continue
		}
		for _, s := range []string{en, zh} {
			if items[id] {
				s = "9 " + s
			}
			if w := hal.Width(s); w > hal.MaxColumns {
				t.Errorf("%q is %d columns with a menu key, the screen has %d", s, w, hal.MaxColumns)
			}
		}
	}
	if got := ZhCN.F(UploadProgress, 1, 8, 20); got != "1-8/20笔" {
		t.Errorf("F = %q", got)
	}
	if EN.T(numMsgs) != "" || Lang(9).T(MainMenu) != "MAIN MENU" {
		t.Error("out-of-range id or language")
	}
}

func TestParseLang(t *testing.T) {
	for s, want := range map[string]Lang{"en": EN, "zh-CN": ZhCN} {
		l, err := ParseLang(s)
		if err != nil || l != want || l.String() != s {
			t.Errorf("ParseLang(%q) = %v, %v", s, l, err)
		}
	}
	for _, s := range []string{"", "zh", "zh-cn", "EN", "zh_CN"} {
		if _, err := ParseLang(s); err == nil || !strings.Contains(err.Error(), `"zh-CN"`) {
			t.Errorf("ParseLang(%q) = %v, want an error naming the values", s, err)
		}
	}
	var zero Lang
	if zero != EN {
		t.Error("the zero Lang must be English")
	}
}

func TestTextCoversBothTables(t *testing.T) {
	all := strings.Join(Text(), "\n")
	for _, s := range []string{"MAIN MENU", "主菜单", "MAC校验错", "INSUFFICIENT FUNDS", "本人确认以上交易"} {
		if !strings.Contains(all, s) {
			t.Errorf("Text() lacks %q", s)
		}
	}
}
