package console

import (
	"fmt"
	"log/slog"
	"os"
)

// OpenStdio returns a console reading keys from in and writing screens to
// out (os.Stdin and os.Stdout in the simulator). When in is a terminal it is
// switched to raw mode (no echo, no line buffering, CR not turned into LF)
// and restored by Close; on a pipe or a file nothing is changed, so a test
// harness can write key bytes and read screens.
//
// ISIG stays on in raw mode, on purpose: Ctrl-C still sends SIGINT, which
// stops the daemon cleanly (exit status 0) instead of being swallowed as an
// ignored key.
func OpenStdio(in, out *os.File, log *slog.Logger) (*Console, error) {
	restore, err := makeRaw(int(in.Fd()))
	if err != nil {
		return nil, fmt.Errorf("console %s: raw mode: %w", in.Name(), err)
	}
	return New(in, out, restore, log), nil
}
