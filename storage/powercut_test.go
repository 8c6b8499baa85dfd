package storage

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

const (
	helperDirEnv = "POSAGENT_STORAGE_HELPER_DIR"
	helperKeyEnv = "POSAGENT_STORAGE_HELPER_KEY"
)

func powerCutRecord(stan uint32) []byte {
	return fmt.Appendf(nil, `{"stan":"%06d","pan":"%s","amount":%d,"pad":"%s"}`, stan, testPAN, stan*7, bytes.Repeat([]byte("z"), int(stan%300)))
}

// TestHelperWriter is not a test of its own: TestPowerCut runs the test
// binary again with this test selected and the environment set, as the
// writer process it kills. Without the environment it returns at once.
func TestHelperWriter(t *testing.T) {
	dir := os.Getenv(helperDirEnv)
	if dir == "" {
		return
	}
	key, err := hex.DecodeString(os.Getenv(helperKeyEnv))
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		os.Exit(2)
	}
	s, err := OpenMerchant(filepath.Join(dir, MerchantFile), &gcmSealer{key: key})
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		os.Exit(2)
	}
	c, err := s.Counters()
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		os.Exit(2)
	}
	// Bounded, in case the parent dies without killing us.
	deadline := time.Now().Add(20 * time.Second)
	for stan := c.STAN + 1; time.Now().Before(deadline); stan++ {
		err := s.Update(func(tx *MerchantTx) error {
			if err := tx.PutTxn(1, stan, powerCutRecord(stan)); err != nil {
				return err
			}
			return tx.PutCounters(Counters{STAN: stan, Batch: 1})
		})
		if err != nil {
			fmt.Fprintln(os.Stderr, "helper:", err)
			os.Exit(2)
		}
		// Unbuffered: the line exists only once the commit returned.
		if _, err := fmt.Fprintf(os.Stdout, "%d\n", stan); err != nil {
			os.Exit(2)
		}
	}
	os.Exit(0)
}

// TestPowerCut kills a writer process with SIGKILL at random moments and
// checks that every write it saw return is on disk and that the store
// reopens cleanly with counters and journal consistent (written in one
// transaction). SIGKILL stops the process between any two instructions,
// mid-commit included; the page cache survives it, so this is the
// process-crash half of a power cut (the other half, lost unsynced pages,
// is bbolt's fdatasync ordering: data pages, then the meta page).
func TestPowerCut(t *testing.T) {
	dir := t.TempDir()
	se := newSealer(t)
	path := filepath.Join(dir, MerchantFile)
	reported := map[uint32]bool{}
	var last uint32
	const rounds = 20
	for round := range rounds {
		cmd := selfCommand("-test.run=^TestHelperWriter$", "-test.count=1")
		cmd.Env = append(os.Environ(), helperDirEnv+"="+dir, helperKeyEnv+"="+hex.EncodeToString(se.key))
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(out)
		target := 50 + mrand.IntN(300)
		n := 0
		read := func() bool {
			if !sc.Scan() {
				return false
			}
			v, err := strconv.ParseUint(sc.Text(), 10, 32)
			if err != nil {
				t.Fatalf("round %d: helper said %q", round, sc.Text())
			}
			stan := uint32(v)
			reported[stan] = true
			last = max(last, stan)
			n++
			return true
		}
		for n < target && read() {
		}
		if n < target {
			_ = cmd.Wait()
			t.Fatalf("round %d: helper stopped after %d lines: %s", round, n, stderr.String())
		}
		// Land the kill at a random point of a commit.
		time.Sleep(time.Duration(mrand.IntN(2000)) * time.Microsecond)
		if err := syscall.Kill(cmd.Process.Pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		for read() { // lines already in the pipe were committed too
		}
		_ = cmd.Wait()

		s, err := OpenMerchant(path, se)
		if err != nil {
			t.Fatalf("round %d: reopen after kill: %v", round, err)
		}
		c, err := s.Counters()
		if err != nil || c.STAN < last || c.Batch != 1 {
			t.Fatalf("round %d: counters %+v, %v; last reported STAN %d", round, c, err, last)
		}
		txns, err := s.Txns(1)
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		have := make(map[uint32]bool, len(txns))
		for _, e := range txns {
			if !bytes.Equal(e.Rec, powerCutRecord(e.STAN)) {
				t.Fatalf("round %d: STAN %d record damaged", round, e.STAN)
			}
			if e.STAN > c.STAN {
				t.Fatalf("round %d: STAN %d journaled but counters say %d (not one transaction)", round, e.STAN, c.STAN)
			}
			have[e.STAN] = true
		}
		if !have[c.STAN] {
			t.Fatalf("round %d: counters say %d but that record is missing", round, c.STAN)
		}
		for stan := range reported {
			if !have[stan] {
				t.Fatalf("round %d: STAN %d was reported committed and is lost", round, stan)
			}
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		t.Logf("round %d: %d lines read, last reported %d, store STAN %d", round, n, last, c.STAN)
	}
	if len(reported) < rounds*50 {
		t.Fatalf("only %d STANs reported", len(reported))
	}
}

// selfCommand re-executes the test binary. Under `make test-arm-core` the
// binary is ARM and runs under qemu-arm-static without binfmt_misc, so
// POSAGENT_EXEC_WRAPPER names the emulator to start the child with.
func selfCommand(args ...string) *exec.Cmd {
	if w := os.Getenv("POSAGENT_EXEC_WRAPPER"); w != "" {
		return exec.Command(w, append([]string{os.Args[0]}, args...)...)
	}
	return exec.Command(os.Args[0], args...)
}
