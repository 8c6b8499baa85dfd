package terminal

import (
	"github.com/posagent/posagent/terminal/i18n"
)

// Every word the core shows or prints comes from the message catalog
// (terminal/i18n), in the machine's language ([ui] lang): codes, amounts,
// voucher numbers, serials and masked PANs stay as they are. Logs, acks and
// events stay in English whatever the screen shows.

// Option configures a Machine at New.
type Option func(*Machine)

// WithLang sets the language of the screens and receipts; the default is
// English (the zero i18n.Lang).
func WithLang(l i18n.Lang) Option { return func(m *Machine) { m.lang = l } }

// t returns the word of id in the machine's language.
func (m *Machine) t(id i18n.Msg) string { return m.lang.T(id) }

// label puts a word before a value: "VOUCHER 000002", "凭证号 000002".
func (m *Machine) label(id i18n.Msg, value string) string { return m.lang.T(id) + " " + value }

// typeWord is the word of a journal record's type (SALE, VOID; 消费, 撤销).
func (m *Machine) typeWord(t TxnType) string {
	if t == Void {
		return m.t(i18n.Void)
	}
	return m.t(i18n.Sale)
}

// outcomeWord is the word of a settlement outcome on the screen and the
// settlement slip; the outcome itself (Settled, SettledUploaded) is what
// HQ reads in an unbind's result, so it stays English.
func (m *Machine) outcomeWord(outcome string) string {
	if outcome == SettledUploaded {
		return m.t(i18n.SettledUploaded)
	}
	return m.t(i18n.Settled)
}

// lifecycleWord is the state on the INFO screen.
func (m *Machine) lifecycleWord(l Lifecycle) string {
	switch l {
	case Active:
		return m.t(i18n.Active)
	case Unbinding:
		return m.t(i18n.Unbinding)
	case Tampered:
		return m.t(i18n.Tampered)
	}
	return m.t(i18n.NotActivated)
}

// unbindReasonWord is why an on-device unbind failed, from the reason of
// the ack a remote one would carry (spec/remote.md).
func (m *Machine) unbindReasonWord(reason string) string {
	switch reason {
	case ReasonSettlementFailed:
		return m.t(i18n.SettleFailed)
	case ReasonUnsettledBatch:
		return m.t(i18n.UnsettledBatch)
	}
	return ""
}

// declineLines are the lines of a DECLINED screen: the word and the code,
// then the code's name, which can be longer than the display, on lines of
// its own.
func (m *Machine) declineLines(code string) []string {
	l := []string{m.label(i18n.Declined, code)}
	if n, ok := m.lang.Decline(code); ok {
		l = append(l, wrap(n)...)
	}
	return l
}

// failure is why an exchange or a flow failed: a word of the catalog, the
// response code after DECLINED, and whether it was the sign-in before the
// message that failed. It is rendered in the machine's language on the
// screen and in English in the logs (String). nil means no failure.
type failure struct {
	what   i18n.Msg
	code   string // the response code of a decline
	signIn bool   // "SIGN IN <why>": the sign-in that had to go first failed
}

func failed(what i18n.Msg) *failure { return &failure{what: what} }

func declinedWith(code string) *failure { return &failure{what: i18n.Declined, code: code} }

// inSignIn marks f as the failure of the sign-in before a message.
func (f *failure) inSignIn() *failure {
	g := *f
	g.signIn = true
	return &g
}

// in renders f in l.
func (f *failure) in(l i18n.Lang) string {
	s := l.T(f.what)
	if f.code != "" {
		s += " " + f.code
	}
	if f.signIn {
		s = l.F(i18n.SignInWith, s)
	}
	return s
}

// String renders f in English, for the logs.
func (f *failure) String() string { return f.in(i18n.EN) }

// why renders f in the machine's language, wrapped to the display.
func (m *Machine) why(f *failure) []string { return wrap(f.in(m.lang)) }
