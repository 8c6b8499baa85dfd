package main

import (
	"fmt"
	"log/slog"

	"github.com/posagent/posagent/hal"
	"github.com/posagent/posagent/hal/linuxhw"
	"github.com/posagent/posagent/hal/sesim"
	"github.com/posagent/posagent/hal/simhw"
	"github.com/posagent/posagent/storage"
	"github.com/posagent/posagent/storage/termstore"
)

// system gathers the daemon's dependencies in one struct, like tailscale's
// tsd.System: the devices, the secure element, the stores, the clock and
// the disk meter. openSystem fills what a test left nil from the config;
// in-process tests and benchmarks pass haltest fakes for the devices.
// (The acquirer link is built from the secure element; its own file owns
// it.)
type system struct {
	Devices *hal.Devices
	SE      hal.SecureElement
	Store   *termstore.Store
	Clock   wallClock
	Disk    diskMeter
}

// openSecureElement opens the secure element the config names.
func openSecureElement(cfg Config) (hal.SecureElement, error) {
	switch cfg.HAL.SecureElement {
	case hal.SESoft, "":
		_, _, sePath := storage.Paths(cfg.DataDir)
		se, err := sesim.Open(sePath)
		if err != nil {
			return nil, fmt.Errorf("secure element %s: %w", sePath, err)
		}
		return se, nil
	}
	return nil, fmt.Errorf("hal.secure_element %q: no such secure element", cfg.HAL.SecureElement)
}

// open fills every dependency a test did not set, from the config. On
// error the caller closes what was opened (daemon.close).
func (s *system) open(cfg Config, log *slog.Logger) error {
	var err error
	if s.SE == nil {
		if s.SE, err = openSecureElement(cfg); err != nil {
			return err
		}
	}
	if s.Store == nil {
		if s.Store, err = termstore.Open(cfg.DataDir, s.SE); err != nil {
			return err
		}
	}
	if s.Devices == nil {
		if cfg.HAL.Kind == hal.KindSim {
			s.Devices, err = simhw.Open(cfg.halConfig(), cfg.DataDir, log)
		} else {
			s.Devices, err = linuxhw.Open(cfg.halConfig(), log)
		}
		if err != nil {
			return fmt.Errorf("hal %s: %w", cfg.HAL.Kind, err)
		}
	}
	if s.Disk == nil {
		s.Disk = statfsMeter{dir: cfg.DataDir}
	}
	if s.Clock == nil {
		if cfg.HAL.Kind == hal.KindSim {
			if s.Clock, err = newSimClock(); err != nil {
				return err
			}
		} else {
			s.Clock = systemClock{}
		}
	}
	return nil
}
