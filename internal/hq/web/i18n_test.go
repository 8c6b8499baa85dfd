package web

import (
	"io/fs"
	"regexp"
	"strings"
	"testing"
)

// TestCatalogsComplete: both languages have every message, with the same
// fmt verbs in the same order (a missing %d would print garbage).
func TestCatalogsComplete(t *testing.T) {
	verbs := regexp.MustCompile(`%[-+# 0-9.]*[a-zA-Z%]`)
	en, zh := catalog["en"], catalog["zh-CN"]
	for k, v := range en {
		if strings.HasSuffix(k, ".one") {
			continue // English's singular forms
		}
		z, ok := zh[k]
		if !ok {
			t.Errorf("zh-CN lacks %q", k)
			continue
		}
		if a, b := verbs.FindAllString(v, -1), verbs.FindAllString(z, -1); strings.Join(a, " ") != strings.Join(b, " ") {
			t.Errorf("%q: English verbs %v, Chinese %v", k, a, b)
		}
	}
	for k := range zh {
		if _, ok := en[k]; !ok {
			t.Errorf("en lacks %q", k)
		}
	}
}

// TestTemplatesUseKnownMessages: every message key a template names
// literally exists, so no page shows a raw key.
func TestTemplatesUseKnownMessages(t *testing.T) {
	key := regexp.MustCompile(`\.(?:T|N) "([a-z0-9_.-]+)"`)
	files, _ := fs.Glob(assets, "templates/*.html")
	for _, f := range files {
		b, _ := fs.ReadFile(assets, f)
		for _, m := range key.FindAllStringSubmatch(string(b), -1) {
			if _, ok := catalog["en"][m[1]]; !ok {
				t.Errorf("%s: unknown message %q", f, m[1])
			}
		}
	}
	// Keys built from words at run time.
	for _, prefix := range []string{"state.", "item.", "status.", "role.", "clock.", "code.", "keyrole.", "stepstate.", "lang."} {
		found := false
		for k := range catalog["en"] {
			found = found || strings.HasPrefix(k, prefix)
		}
		if !found {
			t.Errorf("no message starts with %q", prefix)
		}
	}
	for _, w := range fleetStates {
		if _, ok := catalog["en"]["state."+w]; !ok {
			t.Errorf("no message for state %q", w)
		}
	}
	for _, w := range []string{"pending", "signing", "sent", "accepted", "in_progress", "succeeded", "failed", "rejected", "no_answer", "expired", "cancelled"} {
		if _, ok := catalog["en"]["item."+w]; !ok {
			t.Errorf("no message for item state %q", w)
		}
	}
	for _, w := range []string{"draft", "review", "signing", "running", "done", "aborted", "cancelled", "rejected"} {
		if _, ok := catalog["en"]["status."+w]; !ok {
			t.Errorf("no message for request status %q", w)
		}
	}
}

// TestReasonWordsInPlainLanguage: every reason word of remote.md's check
// table and unbind sequence reads as a sentence in both languages; an
// unknown word is quoted, not hidden.
func TestReasonWordsInPlainLanguage(t *testing.T) {
	for _, w := range []string{"expired", "wrong-serial", "replayed", "invalid", "not-yet-valid", "insufficient-signatures",
		"wrong-state", "unsettled-batch", "settlement-failed", "clock-unsynced", "bad-kcv", "bad-seal", "no-answer"} {
		for _, lang := range locales {
			if s := reasonText(lang, w); s == tr(lang, "reason.unknown", w) || len([]rune(s)) < 8 {
				t.Errorf("%s %q: %q", lang, w, s)
			}
		}
	}
	if s := reasonText("en", "disk-full"); !strings.Contains(s, "disk-full") {
		t.Errorf("unknown word hidden: %q", s)
	}
}

func TestLangOfAndPlural(t *testing.T) {
	if trN("en", "req.batch-open", 1) != "1 transaction" || trN("en", "req.batch-open", 2) != "2 transactions" || trN("zh-CN", "req.batch-open", 1) != "1 笔交易" {
		t.Errorf("plural forms: %q %q %q", trN("en", "req.batch-open", 1), trN("en", "req.batch-open", 2), trN("zh-CN", "req.batch-open", 1))
	}
	for in, want := range map[string]string{"zh": "zh-CN", "zh-TW": "zh-CN", "en-GB": "en", "fr": "en", "": "en"} {
		if got := normLang(in); got != want {
			t.Errorf("normLang(%q) = %q, want %q", in, got, want)
		}
	}
}
