//go:build faultinject

package storage

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// The fault-injection test build names every commit of the stores by a
// write point: the store file, what the write is and the function outside
// this package that asked for it ("merchant.db/update merchant store by
// storage/termstore.(*Store).Apply"), numbered per write point from the
// start of the process ("#3": its third commit); the caller tells apart
// the writes of the event loop and those of the MQTT side's goroutines.
// Two variables drive it:
//
//	POSAGENT_TEST_COMMIT_TRACE=FILE   append each commit's "point#n" to FILE
//	POSAGENT_TEST_FAIL_COMMIT=point#n  fail that commit with ENOSPC
//
// The end-to-end disk-full test records a flow's commits once, then runs
// it again failing each in turn (cmd/posagentd/diskfull_points_e2e_test.go).
func init() {
	trace, fail := os.Getenv("POSAGENT_TEST_COMMIT_TRACE"), os.Getenv("POSAGENT_TEST_FAIL_COMMIT")
	if trace == "" && fail == "" {
		return
	}
	var mu sync.Mutex
	seen := map[string]int{}
	beforeCommit = func(path, what string) error {
		mu.Lock()
		defer mu.Unlock()
		point := filepath.Base(path) + "/" + what + " by " + caller()
		seen[point]++
		id := point + "#" + strconv.Itoa(seen[point])
		failed := id == fail
		if trace != "" {
			line := id
			if failed {
				line += "\tENOSPC"
			}
			if f, err := os.OpenFile(trace, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600); err == nil {
				_, _ = f.WriteString(strings.ReplaceAll(line, "\n", " ") + "\n")
				_ = f.Close()
			}
		}
		if failed {
			return fmt.Errorf("write %s: %w (injected at %s)", path, syscall.ENOSPC, id)
		}
		return nil
	}
}

// caller names the first function on the stack outside this package and
// bbolt, without the module's path.
func caller() string {
	pcs := make([]uintptr, 32)
	frames := runtime.CallersFrames(pcs[:runtime.Callers(3, pcs)])
	for {
		f, more := frames.Next()
		fn := f.Function
		if !strings.HasPrefix(fn, "github.com/posagent/posagent/storage.") && !strings.HasPrefix(fn, "go.etcd.io/") &&
			!strings.HasPrefix(fn, "runtime.") {
			return strings.TrimPrefix(fn, "github.com/posagent/posagent/")
		}
		if !more {
			return "?"
		}
	}
}
