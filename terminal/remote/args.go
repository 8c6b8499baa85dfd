package remote

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"
)

// MaxUnbindReason is the longest unbind reason, in characters.
const MaxUnbindReason = 200

// UnbindArgs are the args of an unbind command.
type UnbindArgs struct {
	Reason    string          `json:"reason"`
	Unsettled UnsettledPolicy `json:"unsettled"`
}

// ParseUnbindArgs decodes {"reason":"<≤200>","unsettled":"settle|refuse|force"};
// both keys are optional (unsettled defaults to settle), unknown keys are
// invalid.
func ParseUnbindArgs(raw json.RawMessage) (UnbindArgs, error) {
	a := UnbindArgs{Unsettled: UnsettledSettle}
	m, err := argsObject(raw, "reason", "unsettled")
	if err != nil {
		return UnbindArgs{}, fmt.Errorf("unbind args: %w", err)
	}
	if err := optString(m, "reason", &a.Reason); err != nil {
		return UnbindArgs{}, fmt.Errorf("unbind args: %w", err)
	}
	if n := utf8.RuneCountInString(a.Reason); n > MaxUnbindReason {
		return UnbindArgs{}, fmt.Errorf("unbind args: reason is %d characters, max %d", n, MaxUnbindReason)
	}
	var unsettled string
	if err := optString(m, "unsettled", &unsettled); err != nil {
		return UnbindArgs{}, fmt.Errorf("unbind args: %w", err)
	}
	if _, present := m["unsettled"]; present && unsettled == "" {
		return UnbindArgs{}, errors.New("unbind args: unsettled \"\": want settle, refuse or force")
	}
	if a.Unsettled, err = ParseUnsettledPolicy(unsettled); err != nil {
		return UnbindArgs{}, fmt.Errorf("unbind args: %w", err)
	}
	return a, nil
}

// Acquirer is where a provisioned terminal reaches its acquirer host.
type Acquirer struct {
	Addr string `json:"addr"` // host:port
	TLS  bool   `json:"tls"`
	TPDU TPDU   `json:"tpdu"` // 10 hex digits, e.g. 6000030000
}

// MaxMerchantName is the longest merchant name, in characters.
const MaxMerchantName = 40

// ProvisionArgs are the args of a provision command.
type ProvisionArgs struct {
	TID          TID      `json:"tid"`           // 8 ans (ISO 8583 field 41)
	MID          MID      `json:"mid"`           // 15 ans (ISO 8583 field 42)
	MerchantName string   `json:"merchant_name"` // ≤ 40 characters
	Acquirer     Acquirer `json:"acquirer"`
	TMKSealed    []byte   `json:"tmk_sealed"` // nacl/box.SealAnonymous of the 16-byte TMK
	TMKKCV       string   `json:"tmk_kcv"`    // 6 hex digits, compared case-insensitively
	Activation   string   `json:"activation"` // the activation request id answered
}

// ParseProvisionArgs decodes and checks provision args. Required: tid, mid,
// acquirer.addr, acquirer.tpdu, tmk_sealed, tmk_kcv, activation; optional:
// merchant_name (""), acquirer.tls (false). Unknown keys at either level are
// invalid. tmk_sealed is only checked to be base64: whether it opens is
// the terminal's bad-seal failure, not an invalid command.
func ParseProvisionArgs(raw json.RawMessage) (ProvisionArgs, error) {
	var a ProvisionArgs
	wrap := func(err error) (ProvisionArgs, error) {
		return ProvisionArgs{}, fmt.Errorf("provision args: %w", err)
	}
	m, err := argsObject(raw, "tid", "mid", "merchant_name", "acquirer", "tmk_sealed", "tmk_kcv", "activation")
	if err != nil {
		return wrap(err)
	}
	var sealed, tid, mid, tpdu string
	for _, f := range []struct {
		key string
		dst *string
	}{{"tid", &tid}, {"mid", &mid}, {"tmk_sealed", &sealed}, {"tmk_kcv", &a.TMKKCV}, {"activation", &a.Activation}} {
		if err := reqString(m, f.key, f.dst); err != nil {
			return wrap(err)
		}
	}
	if err := optString(m, "merchant_name", &a.MerchantName); err != nil {
		return wrap(err)
	}
	if a.TID, err = ParseTID(tid); err != nil {
		return wrap(err)
	}
	if a.MID, err = ParseMID(mid); err != nil {
		return wrap(err)
	}
	if n := utf8.RuneCountInString(a.MerchantName); n > MaxMerchantName {
		return wrap(fmt.Errorf("merchant_name is %d characters, max %d", n, MaxMerchantName))
	}
	if a.TMKSealed, err = base64.StdEncoding.Strict().DecodeString(sealed); err != nil || len(a.TMKSealed) == 0 {
		return wrap(errors.New("tmk_sealed: want non-empty standard base64"))
	}
	if !isHex(a.TMKKCV, 6) {
		return wrap(fmt.Errorf("tmk_kcv %q: want 6 hex digits", a.TMKKCV))
	}
	if !ValidID(a.Activation) {
		return wrap(fmt.Errorf("activation %q: want 1-64 of [A-Za-z0-9._-]", a.Activation))
	}
	acq, ok := m["acquirer"]
	if !ok {
		return wrap(errors.New("missing key \"acquirer\""))
	}
	am, err := argsObject(acq, "addr", "tls", "tpdu")
	if err != nil {
		return wrap(fmt.Errorf("acquirer: %w", err))
	}
	if err := reqString(am, "addr", &a.Acquirer.Addr); err != nil {
		return wrap(fmt.Errorf("acquirer: %w", err))
	}
	if err := reqString(am, "tpdu", &tpdu); err != nil {
		return wrap(fmt.Errorf("acquirer: %w", err))
	}
	if v, ok := am["tls"]; ok {
		if err := json.Unmarshal(v, &a.Acquirer.TLS); err != nil {
			return wrap(errors.New("acquirer: tls: not a boolean"))
		}
	}
	if err := checkHostPort(a.Acquirer.Addr); err != nil {
		return wrap(fmt.Errorf("acquirer: addr %q: %w", a.Acquirer.Addr, err))
	}
	if a.Acquirer.TPDU, err = ParseTPDU(tpdu); err != nil {
		return wrap(fmt.Errorf("acquirer: %w", err))
	}
	return a, nil
}

// ParseStatusArgs accepts only {} (absent args arrive here as {}).
func ParseStatusArgs(raw json.RawMessage) error {
	if _, err := argsObject(raw); err != nil {
		return fmt.Errorf("status args: %w", err)
	}
	return nil
}

// argsObject decodes an args object strictly and refuses keys not in allowed.
// Empty raw (absent args) is {}.
func argsObject(raw json.RawMessage, allowed ...string) (map[string]json.RawMessage, error) {
	if len(raw) == 0 {
		raw = json.RawMessage("{}")
	}
	m, err := decodeObject(raw)
	if err != nil {
		return nil, err
	}
next:
	for k := range m {
		for _, a := range allowed {
			if k == a {
				continue next
			}
		}
		return nil, fmt.Errorf("unknown key %q", k)
	}
	return m, nil
}

func optString(m map[string]json.RawMessage, key string, dst *string) error {
	v, ok := m[key]
	if !ok {
		return nil
	}
	if err := json.Unmarshal(v, dst); err != nil || string(v) == "null" {
		return fmt.Errorf("%s: not a string", key)
	}
	return nil
}

func reqString(m map[string]json.RawMessage, key string, dst *string) error {
	if _, ok := m[key]; !ok {
		return fmt.Errorf("missing key %q", key)
	}
	return optString(m, key, dst)
}

// checkHostPort accepts host:port with a non-empty host and a port 1-65535.
//
// It splits like net.SplitHostPort (a bracketed IPv6 host, or a host
// without colons) but stays free of package net: the core does no IO and
// links none.
func checkHostPort(addr string) error {
	var host, port string
	if strings.HasPrefix(addr, "[") {
		end := strings.Index(addr, "]:")
		if end < 0 {
			return errors.New("missing port in address")
		}
		host, port = addr[1:end], addr[end+2:]
	} else {
		i := strings.LastIndexByte(addr, ':')
		if i < 0 {
			return errors.New("missing port in address")
		}
		host, port = addr[:i], addr[i+1:]
		if strings.IndexByte(host, ':') >= 0 {
			return errors.New("too many colons in address")
		}
	}
	if host == "" {
		return errors.New("empty host")
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 1 || p > 65535 {
		return errors.New("port not in 1-65535")
	}
	return nil
}

// Update args bounds.
const (
	// MaxBundleSize bounds an update bundle: a terminal's root filesystem
	// slot is far smaller, and a size from a typo must not make a terminal
	// fill its disk before the hash could tell.
	MaxBundleSize int64 = 2 << 30
	// MaxUpdateURL bounds the bundle URL, in bytes.
	MaxUpdateURL = 2048
	// MaxVersion bounds the version string, in bytes.
	MaxVersion = 64
)

// UpdateWhen is when an update may install and reboot.
type UpdateWhen string

// Update timings (the "when" of update args).
const (
	// UpdateIdle: at the first idle moment (no exchange in flight, no
	// pending reversal, nobody at the keypad); the default.
	UpdateIdle UpdateWhen = "idle"
	// UpdateAfterSettlement: at the first idle moment after the next
	// settlement closed the batch that is open when the command arrives.
	UpdateAfterSettlement UpdateWhen = "after-settlement"
)

// UpdateArgs are the args of an update command.
type UpdateArgs struct {
	URL     string     `json:"url"`     // https://…, no user info
	SHA256  string     `json:"sha256"`  // 64 hex digits, lower case after parsing
	Size    int64      `json:"size"`    // bytes, 1..MaxBundleSize
	Version string     `json:"version"` // what the bundle boots: 1-64 of [A-Za-z0-9._+~-]
	When    UpdateWhen `json:"when,omitempty"`
}

// ParseUpdateArgs decodes {"url","sha256","size","version"[,"when"]}:
// every key but when is required, unknown keys are invalid. The URL must
// be https with a host and no user info (a signed command is no place for
// a password, and acks and logs repeat the URL); the hash is compared
// case-insensitively and kept in lower case.
func ParseUpdateArgs(raw json.RawMessage) (UpdateArgs, error) {
	wrap := func(err error) (UpdateArgs, error) { return UpdateArgs{}, fmt.Errorf("update args: %w", err) }
	m, err := argsObject(raw, "url", "sha256", "size", "version", "when")
	if err != nil {
		return wrap(err)
	}
	var a UpdateArgs
	for _, f := range []struct {
		key string
		dst *string
	}{{"url", &a.URL}, {"sha256", &a.SHA256}, {"version", &a.Version}} {
		if err := reqString(m, f.key, f.dst); err != nil {
			return wrap(err)
		}
	}
	var when string
	if err := optString(m, "when", &when); err != nil {
		return wrap(err)
	}
	switch a.When = UpdateWhen(when); {
	case when == "":
		if _, present := m["when"]; present {
			return wrap(errors.New(`when "": want idle or after-settlement`))
		}
		a.When = UpdateIdle
	case a.When != UpdateIdle && a.When != UpdateAfterSettlement:
		return wrap(fmt.Errorf("when %q: want idle or after-settlement", when))
	}
	size, ok := m["size"]
	if !ok {
		return wrap(errors.New(`missing key "size"`))
	}
	if a.Size, err = strconv.ParseInt(string(bytes.TrimSpace(size)), 10, 64); err != nil || a.Size < 1 || a.Size > MaxBundleSize {
		return wrap(fmt.Errorf("size %s: want an integer 1 to %d", size, MaxBundleSize))
	}
	if err := checkBundleURL(a.URL); err != nil {
		return wrap(err)
	}
	if !isHex(a.SHA256, 64) {
		return wrap(fmt.Errorf("sha256 %q: want 64 hex digits", a.SHA256))
	}
	a.SHA256 = strings.ToLower(a.SHA256)
	if !ValidVersion(a.Version) {
		return wrap(fmt.Errorf("version %q: want 1-%d of [A-Za-z0-9._+~-]", a.Version, MaxVersion))
	}
	return a, nil
}

// ValidVersion reports whether v is a version an update may name: 1-64
// of [A-Za-z0-9._+~-] (semver, a git describe, a Debian version).
func ValidVersion(v string) bool {
	if v == "" || len(v) > MaxVersion {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("._+~-", c) >= 0) {
			return false
		}
	}
	return true
}

// checkBundleURL accepts an absolute https URL with a host, no user info
// and no fragment, at most MaxUpdateURL bytes.
func checkBundleURL(s string) error {
	if len(s) > MaxUpdateURL {
		return fmt.Errorf("url is %d bytes, max %d", len(s), MaxUpdateURL)
	}
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("url: %v", err)
	}
	switch {
	case u.Scheme != "https":
		return fmt.Errorf("url %q: want https", s)
	case u.Host == "" || u.Hostname() == "":
		return fmt.Errorf("url %q: no host", s)
	case u.User != nil:
		return fmt.Errorf("url %q: user info is not allowed", s)
	case u.Fragment != "" || strings.Contains(s, "#"):
		return fmt.Errorf("url %q: a fragment is not allowed", s)
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("url %q: port not in 1-65535", s)
		}
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= 0x20 || s[i] >= 0x7f {
			return fmt.Errorf("url %q: control, space or non-ASCII byte", s)
		}
	}
	return nil
}
