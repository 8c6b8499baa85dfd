package storage

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// ErrCorrupt reports a store file that bbolt cannot read safely: truncated,
// overwritten or not a bbolt file at all.
var ErrCorrupt = errors.New("corrupted store")

// ErrLocked reports a store file held by another process (or another open
// handle in this one).
var ErrLocked = errors.New("store locked by another process")

// lockTimeout bounds the wait for bbolt's flock: a second posagentd (or a
// stray debugging tool) holding the file gives ErrLocked instead of a
// daemon hanging at boot.
var lockTimeout = 2 * time.Second

const (
	fileMode = 0o600
	dirMode  = 0o700
)

// guard runs fn, turning a bbolt panic (its assertions on page types) and a
// memory fault (a page pointer past the end of a truncated mmapped file:
// SIGBUS, or SIGSEGV beyond the mapping) into ErrCorrupt. SetPanicOnFault
// is per goroutine, so fn must not hand bbolt work to other goroutines.
func guard(fn func() error) (err error) {
	old := debug.SetPanicOnFault(true)
	defer debug.SetPanicOnFault(old)
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %v", ErrCorrupt, r)
		}
	}()
	return fn()
}

// openBolt opens (creating if missing) the bbolt file at path with mode
// 0600, creating its directory 0700 if missing, and checks it is readable
// end to end. kind names the store in errors ("identity", "merchant").
func openBolt(kind, path string) (*bolt.DB, error) {
	if err := os.MkdirAll(filepath.Dir(path), dirMode); err != nil {
		return nil, fmt.Errorf("open %s store %s: %w", kind, path, err)
	}
	// Capture the file so it can be closed (releasing the flock) if bbolt
	// panics half-way through Open, before it hands us a *DB.
	var file *os.File
	opts := &bolt.Options{
		Timeout: lockTimeout,
		// NoSync and NoFreelistSync stay false (the defaults): every
		// commit fsyncs its pages and the freelist, so a reopen after a
		// power cut needs no freelist rebuild by scanning every page.
		FreelistType: bolt.FreelistArrayType,
		OpenFile: func(name string, flag int, mode os.FileMode) (*os.File, error) {
			f, err := os.OpenFile(name, flag, mode)
			file = f
			return f, err
		},
	}
	var db *bolt.DB
	err := guard(func() error {
		var err error
		db, err = bolt.Open(path, fileMode, opts)
		return err
	})
	if err != nil {
		if db == nil && file != nil {
			// bbolt panicked inside Open, after mmapping the file. The
			// mapping (which we cannot reach to unmap) keeps the open
			// file description, and so its flock, alive after Close:
			// unlock explicitly, or the wipe that follows a corrupt
			// store would find it locked. The leaked mapping is the
			// price of a corrupt store at boot. A double close after
			// bbolt's own error path is harmless.
			_ = syscall.Flock(int(file.Fd()), syscall.LOCK_UN)
			_ = file.Close()
		}
		return nil, fmt.Errorf("open %s store %s: %w", kind, path, describe(err))
	}
	if err := verify(db); err != nil {
		_ = guard(db.Close)
		return nil, fmt.Errorf("open %s store %s: %w", kind, path, err)
	}
	return db, nil
}

// describe maps bbolt's terse errors to ones a technician can act on.
func describe(err error) error {
	switch {
	case errors.Is(err, bolterrors.ErrTimeout):
		return fmt.Errorf("%w (%v)", ErrLocked, err)
	case errors.Is(err, bolterrors.ErrInvalid), errors.Is(err, bolterrors.ErrChecksum),
		errors.Is(err, bolterrors.ErrVersionMismatch), errors.Is(err, bolterrors.ErrInvalidMapping):
		return fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	return err
}

// verify checks that the file is as long as its meta page says (a file
// truncated by a bad copy or a full disk is caught here, without touching
// the missing pages) and then reads every bucket and key once, so that
// corruption is found at open rather than in the middle of a sale. The
// stores are small (one batch of journal), so the walk is cheap.
func verify(db *bolt.DB) error {
	return guard(func() error {
		return db.View(func(tx *bolt.Tx) error {
			info, err := os.Stat(db.Path())
			if err != nil {
				return err
			}
			if tx.Size() > info.Size() {
				return fmt.Errorf("%w: file is %d bytes, its meta page says %d (truncated)",
					ErrCorrupt, info.Size(), tx.Size())
			}
			return tx.ForEach(func(_ []byte, b *bolt.Bucket) error { return walk(b) })
		})
	})
}

func walk(b *bolt.Bucket) error {
	return b.ForEach(func(k, v []byte) error {
		if v == nil {
			if sub := b.Bucket(k); sub != nil {
				return walk(sub)
			}
		}
		return nil
	})
}

// view and update run a bbolt transaction under guard, naming the store in
// any error.
func view(db *bolt.DB, what string, fn func(*bolt.Tx) error) error {
	if err := guard(func() error { return db.View(fn) }); err != nil {
		return fmt.Errorf("%s %s: %w", what, db.Path(), err)
	}
	return nil
}

func update(db *bolt.DB, what string, fn func(*bolt.Tx) error) error {
	if hook := beforeCommit; hook != nil {
		inner := fn
		fn = func(tx *bolt.Tx) error {
			if err := inner(tx); err != nil {
				return err
			}
			return hook(db.Path(), what)
		}
	}
	if err := guard(func() error { return db.Update(fn) }); err != nil {
		return fmt.Errorf("%s %s: %w", what, db.Path(), err)
	}
	return nil
}

// clone copies a value out of bbolt's mmap, which is only valid inside the
// transaction.
func clone(v []byte) []byte {
	if v == nil {
		return nil
	}
	return append(make([]byte, 0, len(v)), v...)
}
