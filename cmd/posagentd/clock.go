package main

import (
	"fmt"
	"os"
	"runtime/debug"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// wallClock is the time the daemon gives the core, behind an interface so
// tests move it (spec/remote.md "Clock trust").
type wallClock interface {
	Now() time.Time
	// Synced reports whether the system says its clock is synchronised.
	Synced() bool
	// Set sets the clock (from the acquirer's sign-in answer).
	Set(t time.Time) error
}

// systemClock is the kernel's clock: adjtimex(2) says whether NTP (or
// chrony, or systemd-timesyncd) has synchronised it, settimeofday(2) sets
// it.
type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

func (systemClock) Synced() bool {
	var tx unix.Timex
	state, err := unix.Adjtimex(&tx)
	// TIME_ERROR (5) or STA_UNSYNC: the kernel does not consider the
	// clock synchronised (what timedatectl's "System clock synchronized"
	// reads).
	return err == nil && state != unix.TIME_ERROR && tx.Status&unix.STA_UNSYNC == 0
}

func (systemClock) Set(t time.Time) error {
	tv := unix.NsecToTimeval(t.UnixNano())
	if err := unix.Settimeofday(&tv); err != nil {
		return fmt.Errorf("settimeofday: %w", err)
	}
	return nil
}

// simClock is the host simulator's clock: it never touches the host's
// clock, and takes it as synchronised (a developer's machine, a CI runner
// whose kernel may not say so). Set moves an offset; POSAGENT_SIM_CLOCK
// (RFC 3339) starts it at another time, unsynchronised, to play a
// terminal that booted without its RTC (a 1970 clock).
type simClock struct {
	mu     sync.Mutex
	offset time.Duration
	synced bool
}

func newSimClock() (*simClock, error) {
	c := &simClock{synced: true}
	if s := os.Getenv("POSAGENT_SIM_CLOCK"); s != "" {
		at, err := time.Parse(time.RFC3339, s)
		if err != nil {
			return nil, fmt.Errorf("POSAGENT_SIM_CLOCK: %w", err)
		}
		c.offset, c.synced = time.Until(at), false
	}
	return c, nil
}

func (c *simClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

func (c *simClock) Synced() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.synced
}

func (c *simClock) Set(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offset = time.Until(t)
	return nil
}

// diskMeter reports the free space of the data directory, behind an
// interface so tests set it.
type diskMeter interface {
	FreeKiB() (int64, error)
}

// statfsMeter reads it with statfs(2): the blocks available to an
// unprivileged user.
type statfsMeter struct{ dir string }

func (m statfsMeter) FreeKiB() (int64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(m.dir, &st); err != nil {
		return 0, fmt.Errorf("statfs %s: %w", m.dir, err)
	}
	return int64(st.Bavail) * int64(st.Bsize) / 1024, nil
}

// releaseFloor is the earliest time floor of any build: a build without
// VCS information (a tarball) still refuses to trust 1970.
var releaseFloor = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// buildTime is the time floor a fresh terminal starts from: the commit
// time of the build (go build records it) or the release floor.
var buildTime = func() time.Time {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.time" {
				if t, err := time.Parse(time.RFC3339, s.Value); err == nil && t.After(releaseFloor) {
					return t
				}
			}
		}
	}
	return releaseFloor
}()
