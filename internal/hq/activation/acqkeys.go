package activation

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"

	"github.com/posagent/posagent/internal/durable"
)

// FileKeys hands TMKs to the acquirer simulator through its keys file
// (acquirer-sim --keys): a JSON object TID -> TMK in upper-case hex, which
// the simulator re-reads at every sign-in. Every change takes an exclusive
// flock(2) on PATH.lock, re-reads the file and replaces it atomically, so
// several hqd instances on one host never lose each other's keys. (A
// production acquirer takes the TMK through its HSM's key exchange
// instead; this is the lab's hand-off.)
type FileKeys struct{ Path string }

// SetKey records tid -> tmk.
func (f FileKeys) SetKey(tid string, tmk []byte) error {
	lock, err := os.OpenFile(f.Path+".lock", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("lock acquirer keys: %w", err)
	}
	defer lock.Close()
	for {
		err = syscall.Flock(int(lock.Fd()), syscall.LOCK_EX)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("lock acquirer keys: %w", err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	keys := map[string]string{}
	data, err := os.ReadFile(f.Path)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return fmt.Errorf("read acquirer keys: %w", err)
	default:
		if err := json.Unmarshal(data, &keys); err != nil {
			return fmt.Errorf("acquirer keys %s: want a JSON object TID -> TMK hex: %w", f.Path, err)
		}
	}
	keys[tid] = strings.ToUpper(hex.EncodeToString(tmk))
	out, err := json.MarshalIndent(keys, "", "  ")
	if err != nil {
		return fmt.Errorf("acquirer keys %s: %w", f.Path, err)
	}
	if err := durable.WriteFile(f.Path, append(out, '\n'), 0o600); err != nil {
		return fmt.Errorf("acquirer keys %s: %w", f.Path, err)
	}
	return nil
}
