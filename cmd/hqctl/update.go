package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"

	"github.com/posagent/posagent/internal/hq/wire"
	"github.com/posagent/posagent/terminal/remote"
)

// updateFlags are job create's flags for an update job: the args of the
// update command, checked with the terminal's own parser before hqd sees
// them.
type updateFlags struct {
	url, sha256, version, when string
	size                       int64
}

func (u *updateFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&u.url, "url", "", "update: the bundle's https `URL`")
	fs.StringVar(&u.sha256, "sha256", "", "update: the bundle's SHA-256 (64 hex digits)")
	fs.Int64Var(&u.size, "size", 0, "update: the bundle's size in `bytes`")
	fs.StringVar(&u.version, "version", "", "update: the version the bundle boots")
	fs.StringVar(&u.when, "when", "", "update: idle (default) or after-settlement")
}

// apply puts the update args into req when any update flag is given.
func (u *updateFlags) apply(req *wire.JobRequest) error {
	if !u.set() {
		return nil
	}
	if len(req.Args) > 0 || req.Type != string(remote.TypeUpdate) {
		return errors.New("--url, --sha256, --size, --version and --when go with --type update, without --args")
	}
	raw, err := u.args()
	if err != nil {
		return err
	}
	req.Args = raw
	return nil
}

func (u *updateFlags) set() bool {
	return u.url != "" || u.sha256 != "" || u.size != 0 || u.version != "" || u.when != ""
}

// args builds and checks the update args.
func (u *updateFlags) args() (json.RawMessage, error) {
	a := remote.UpdateArgs{URL: u.url, SHA256: u.sha256, Size: u.size, Version: u.version, When: remote.UpdateWhen(u.when)}
	raw, err := json.Marshal(a)
	if err != nil {
		return nil, err
	}
	if _, err := remote.ParseUpdateArgs(raw); err != nil {
		return nil, fmt.Errorf("--url/--sha256/--size/--version/--when: %w", err)
	}
	return raw, nil
}
