package main

import (
	"fmt"
	"image/png"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/posagent/posagent/terminal/i18n"
)

// TestDemo drives build/demo.sh (what `make demo` runs) the way a person
// does: in a real terminal (tmux, 80x30), reading the screen and typing.
// It activates the terminal with the code from the banner, makes a sale and
// voids it, then stops the lab with Ctrl-C.
func TestDemo(t *testing.T) { runDemo(t, i18n.EN) }

// TestDemoZhCN: the same with build/demo.sh --lang zh-CN, reading the
// Chinese screens; the screen is also drawn into the lab's screen.png.
func TestDemoZhCN(t *testing.T) { runDemo(t, i18n.ZhCN) }

func runDemo(t *testing.T, lang i18n.Lang) {
	w := lang.T
	tmuxBin, err := exec.LookPath("tmux")
	if err != nil {
		t.Fatal("tmux is missing: run build/install-tools.sh (apt-get install tmux)")
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	bin := filepath.Join(tmp, "bin")
	for _, c := range []string{"posagentd", "hqctl", "hqd", "acquirer-sim"} {
		cmd := exec.Command("go", "build", "-o", filepath.Join(bin, c), "./cmd/"+c)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", c, err, out)
		}
	}
	lab := filepath.Join(tmp, "lab")
	brokerPort, acqPort, hqPort := freeTCPPort(t), freeTCPPort(t), freeTCPPort(t)
	env := []string{"DEMO_DIR=" + lab, "DEMO_BIN=" + bin,
		fmt.Sprintf("DEMO_BROKER_PORT=%d", brokerPort), fmt.Sprintf("DEMO_ACQ_PORT=%d", acqPort), fmt.Sprintf("DEMO_HQ_PORT=%d", hqPort)}

	// A private tmux server, so the test never touches anyone's sessions.
	sock := fmt.Sprintf("posagent-demo-test-%d", os.Getpid())
	tmux := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(tmuxBin, append([]string{"-L", sock}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("tmux %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	script := "env " + strings.Join(env, " ") + " " + filepath.Join(root, "build/demo.sh") + " --lang " + lang.String() + "; echo DEMO-EXIT $?; sleep 60"
	tmux("new-session", "-d", "-s", "demo", "-x", "80", "-y", "30", script)
	t.Cleanup(func() {
		_ = exec.Command(tmuxBin, "-L", sock, "kill-server").Run()
		if t.Failed() {
			for _, l := range []string{"broker", "acquirer", "hqd", "posagentd"} {
				b, _ := os.ReadFile(filepath.Join(lab, l+".log"))
				t.Logf("%s.log:\n%s", l, b)
			}
		}
	})

	pane := func() string { return tmux("capture-pane", "-p", "-t", "demo") }
	// screen is the terminal's part of the pane, under the banner's rule.
	screen := func() string {
		p := pane()
		if i := strings.Index(p, "-----\n"); i >= 0 {
			return p[i+len("-----\n"):]
		}
		return ""
	}
	waitScreen := func(want string, d time.Duration) string {
		t.Helper()
		deadline := time.Now().Add(d)
		for {
			s := screen()
			if strings.Contains(s, want) {
				return s
			}
			if time.Now().After(deadline) {
				t.Fatalf("no %q on the screen within %s; pane:\n%s", want, d, pane())
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	keys := func(k ...string) { tmux(append([]string{"send-keys", "-t", "demo"}, k...)...) }
	swipe := func(pan ...string) {
		t.Helper()
		cmd := exec.Command(filepath.Join(root, "build/swipe.sh"), pan...)
		cmd.Env = append(os.Environ(), "DEMO_DIR="+lab)
		if out, err := cmd.CombinedOutput(); err != nil || !strings.HasPrefix(string(out), "swiped 622202") {
			t.Fatalf("swipe.sh: %v: %s", err, out)
		}
	}

	waitScreen(w(i18n.NotActivated), 60*time.Second)
	m := regexp.MustCompile(`activation code +(\d{8})`).FindStringSubmatch(pane())
	if m == nil {
		t.Fatalf("no activation code in the banner:\n%s", pane())
	}
	for _, want := range []string{"technician pwd    4321", "supervisor pwd    123456", "build/swipe.sh", "Ctrl-C",
		fmt.Sprintf("http://127.0.0.1:%d/", hqPort), "alice / alice-demo-pass (requester)", "bob / bob-demo-pass (approver)"} {
		if !strings.Contains(strings.ReplaceAll(pane(), "\n", ""), want) {
			t.Fatalf("banner lacks %q:\n%s", want, pane())
		}
	}
	// The banner's back office and operators work: each logs in.
	for name, pw := range map[string]string{"alice": "alice-demo-pass", "bob": "bob-demo-pass"} {
		backOfficeLogin(t, fmt.Sprintf("http://127.0.0.1:%d", hqPort), name, pw)
	}

	keys("1")
	waitScreen(w(i18n.TechPwd), 5*time.Second)
	keys("4321", "Enter")
	waitScreen(w(i18n.ActivationCode), 5*time.Second)
	keys(m[1], "Enter")
	// WAITING FOR HQ lasts as long as HQ takes (milliseconds here); then the
	// demo's acquirer signs the terminal in with the TMK hqd gave it.
	waitScreen(w(i18n.SwipeSettleCard), 30*time.Second)
	hqdLog, _ := os.ReadFile(filepath.Join(lab, "hqd.log"))
	if !regexp.MustCompile(`activation request answered.* serial=DEMO-0001 request=act-DEMO-0001-\d+ provision=prov-DEMO-0001-\d+ tid=10000001`).Match(hqdLog) {
		t.Fatalf("hqd.log has no provision:\n%s", hqdLog)
	}
	swipe()
	waitScreen(w(i18n.Activated), 10*time.Second)
	keys("Enter")
	waitScreen(w(i18n.MainMenu), 10*time.Second)

	// Sale: 1, amount in fen, Enter, swipe.
	keys("1")
	waitScreen(w(i18n.Amount), 5*time.Second)
	keys("1234", "Enter")
	waitScreen(w(i18n.SwipeCard), 5*time.Second)
	swipe("6222021234567890123")
	s := waitScreen(w(i18n.Approved), 30*time.Second)
	v := regexp.MustCompile(w(i18n.VoucherLabel) + ` (\d{6})`).FindStringSubmatch(s)
	if v == nil || !strings.Contains(s, "12.34") {
		t.Fatalf("sale APPROVED screen without voucher or amount:\n%s", s)
	}
	keys("Enter")
	waitScreen(w(i18n.MainMenu), 5*time.Second)

	// Void: 2 TRANSACTION MGMT, 1 VOID, supervisor password, 1 VOUCHER NO,
	// the voucher, confirm.
	keys("2")
	waitScreen(w(i18n.TxnMgmt), 5*time.Second)
	keys("1")
	waitScreen(w(i18n.SupervisorPwd), 5*time.Second)
	keys("123456", "Enter")
	waitScreen(w(i18n.VoidBy), 5*time.Second)
	keys("1")
	waitScreen(w(i18n.VoucherNo), 5*time.Second)
	keys(v[1], "Enter")
	s = waitScreen(w(i18n.VoidConfirm), 5*time.Second)
	if !strings.Contains(s, "12.34") || !strings.Contains(s, v[1]) {
		t.Fatalf("void confirm screen:\n%s", s)
	}
	keys("Enter")
	waitScreen(w(i18n.Approved), 30*time.Second)

	// The LCD picture of the demo: the last screen, 320x240.
	if !strings.Contains(pane(), "screen.png") {
		t.Errorf("banner lacks the screen picture:\n%s", pane())
	}
	f, err := os.Open(filepath.Join(lab, "screen.png"))
	if err != nil {
		t.Fatalf("the demo draws no screen picture: %v", err)
	}
	img, err := png.Decode(f)
	f.Close()
	if err != nil || img.Bounds().Dx() != 320 || img.Bounds().Dy() != 240 {
		t.Fatalf("screen.png: %v; want a 320x240 PNG", err)
	}

	// Ctrl-C stops the terminal cleanly and the script takes the lab down.
	keys("C-c")
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(pane(), "DEMO-EXIT 0") {
		if time.Now().After(deadline) {
			t.Fatalf("demo did not stop with status 0 after Ctrl-C:\n%s", pane())
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, port := range []int{brokerPort, acqPort, hqPort} {
		if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second); err == nil {
			c.Close()
			t.Errorf("port %d still open after the demo stopped: a background process was left behind", port)
		}
	}
}

// backOfficeLogin logs in to hqd's back office as a browser would (the
// login form's CSRF cookie and field) and checks the fleet page lists the
// demo terminal.
func backOfficeLogin(t *testing.T, base, name, pw string) {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	resp, err := c.Get(base + "/login")
	if err != nil {
		t.Fatalf("back office: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := regexp.MustCompile(`name="csrf" value="([0-9a-f]+)"`).FindSubmatch(body)
	if m == nil {
		t.Fatalf("back office login page:\n%s", body)
	}
	resp, err = c.PostForm(base+"/login", url.Values{"csrf": {string(m[1])}, "name": {name}, "password": {pw}})
	if err != nil {
		t.Fatalf("back office login: %v", err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "DEMO-0001") {
		t.Fatalf("back office login of %s: %d\n%s", name, resp.StatusCode, body)
	}
}

// freeTCPPort returns a loopback port that was free a moment ago.
func freeTCPPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
