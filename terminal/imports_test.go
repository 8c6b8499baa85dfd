package terminal

import (
	"os/exec"
	"strings"
	"testing"
)

// TestCoreDoesNoIO pins the design rule: the core and its wire rules link
// no network, store, MQTT, serial or GPIO package. (log/slog brings os, as
// the standard library's logger must; the core never calls it directly.)
func TestCoreDoesNoIO(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".", "./remote").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	forbidden := []string{"net", "net/http", "go.etcd.io/bbolt", "github.com/eclipse/paho.mqtt.golang",
		"go.bug.st/serial", "periph.io/x/conn/v3", "periph.io/x/host/v3", "os/exec",
		"github.com/posagent/posagent/storage", "github.com/posagent/posagent/iso8583"}
	deps := map[string]bool{}
	for _, d := range strings.Fields(string(out)) {
		deps[d] = true
	}
	if !deps["github.com/posagent/posagent/terminal"] {
		t.Fatalf("go list did not list the core itself: %s", out)
	}
	for _, f := range forbidden {
		if deps[f] {
			t.Errorf("the core depends on %s", f)
		}
	}
	for d := range deps {
		if strings.HasPrefix(d, "github.com/posagent/posagent/hal/") {
			t.Errorf("the core depends on a HAL adapter: %s", d)
		}
	}
}
