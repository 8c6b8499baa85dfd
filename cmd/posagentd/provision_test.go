package main

import (
	"strings"
	"testing"
)

// TestProvisionFileValidate: the bench provisioning file takes exactly
// what HQ's provision command may carry (the rules of terminal/remote),
// plus its own fields.
func TestProvisionFileValidate(t *testing.T) {
	good := func() provisionFile {
		var p provisionFile
		p.TID, p.MID, p.MerchantName = "12345678", "123456789012345", "面馆 NOODLE BAR"
		p.Acquirer.Addr, p.Acquirer.TPDU = "127.0.0.1:5000", "6000030000"
		p.TMK = strings.Repeat("11", 16)
		return p
	}
	if p := good(); p.validate() != nil {
		t.Fatalf("good file: %v", p.validate())
	}
	noTPDU := good()
	noTPDU.Acquirer.TPDU = ""
	if err := noTPDU.validate(); err != nil {
		t.Errorf("TPDU left to the default: %v", err)
	}
	for name, edit := range map[string]func(*provisionFile){
		"tid 7":            func(p *provisionFile) { p.TID = "1234567" },
		"tid control char": func(p *provisionFile) { p.TID = "1234567\n" },
		"mid 16":           func(p *provisionFile) { p.MID = "1234567890123456" },
		"tpdu not 60":      func(p *provisionFile) { p.Acquirer.TPDU = "7000030000" },
		"addr no port":     func(p *provisionFile) { p.Acquirer.Addr = "acq.example.com" },
		"name 41":          func(p *provisionFile) { p.MerchantName = strings.Repeat("面", 41) },
		"tmk short":        func(p *provisionFile) { p.TMK = "1122" },
		"pan letters":      func(p *provisionFile) { p.SettlementPAN = "62226000000000x" },
	} {
		p := good()
		edit(&p)
		if err := p.validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
