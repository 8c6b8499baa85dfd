package storage

import (
	"errors"
	"fmt"
	"github.com/posagent/posagent/internal/durable"
	"io/fs"
	"os"
	"path/filepath"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"
)

// WipeReport says what a wipe removed (remote.md unbind step 5: "proof of
// wipe"). Counting reads only bucket keys, which are not sealed, so it
// works after the SE's data key is destroyed.
type WipeReport struct {
	Existed  bool  `json:"existed"`          // there was a merchant store file
	Counted  bool  `json:"counted"`          // the counts below were read (false: the file was unreadable, wiped anyway)
	Txns     int   `json:"txns_removed"`     // journal records, all batches
	Batches  int   `json:"batches_removed"`  // distinct batch numbers in the journal
	Params   bool  `json:"params_removed"`   // merchant parameters were present
	Binding  bool  `json:"binding_removed"`  // a settlement-card binding was present
	Reversal bool  `json:"reversal_removed"` // a pending reversal was present
	Bytes    int64 `json:"bytes_zeroed"`     // data overwritten with zeros (the file's holes hold none)
}

// Wipe closes the store and wipes its file (see the package function Wipe).
func (s *MerchantStore) Wipe() (WipeReport, error) {
	if err := s.Close(); err != nil {
		return WipeReport{}, fmt.Errorf("wipe merchant store %s: %w", s.path, err)
	}
	return Wipe(s.path)
}

// Wipe erases the merchant store at path: it counts what is there, then
// overwrites the whole file with zeros, fsyncs, removes it and fsyncs the
// directory. The caller destroys the SE's data key first (crypto-erase):
// on flash behind a wear-levelling FTL the zeros may land on new blocks
// and old ones linger until garbage collection, but they hold only
// AES-GCM ciphertext under a key that no longer exists.
//
// Wipe is idempotent, so an unbind interrupted by a power cut runs it again
// on the next boot: a missing file is not an error. A file that bbolt
// cannot read is wiped anyway (Counted false); a file locked by a live
// process is not touched (ErrLocked).
func Wipe(path string) (WipeReport, error) {
	var r WipeReport
	wrap := func(err error) error { return fmt.Errorf("wipe merchant store %s: %w", path, err) }
	info, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return r, nil
	}
	if err != nil {
		return r, wrap(err)
	}
	if !info.Mode().IsRegular() {
		return r, wrap(fmt.Errorf("not a regular file (%s)", info.Mode()))
	}
	r.Existed = true
	if err := count(path, &r); errors.Is(err, ErrLocked) {
		return r, wrap(err)
	}
	n, err := zeroFile(path)
	r.Bytes = n
	if err != nil {
		return r, wrap(err)
	}
	if err := os.Remove(path); err != nil {
		return r, wrap(err)
	}
	if err := durable.SyncDir(filepath.Dir(path)); err != nil {
		return r, wrap(err)
	}
	return r, nil
}

// count fills the report from the file's keys, without unsealing anything.
func count(path string, r *WipeReport) error {
	db, err := openBolt("merchant", path)
	if err != nil {
		return err
	}
	defer func() { _ = guard(db.Close) }()
	return view(db, "count merchant store", func(tx *bolt.Tx) error {
		if b := tx.Bucket(bktState); b != nil {
			r.Params = b.Get(keyParams) != nil
			r.Binding = b.Get(keyBinding) != nil
			r.Reversal = b.Get(keyReversal) != nil
		}
		if b := tx.Bucket(bktJournal); b != nil {
			last, first := uint32(0), true
			err := b.ForEach(func(k, _ []byte) error {
				r.Txns++
				if len(k) == 8 {
					if bn, _ := splitTxnKey(k); first || bn != last {
						r.Batches++
						last, first = bn, false
					}
				}
				return nil
			})
			if err != nil {
				return err
			}
		}
		r.Counted = true
		return nil
	})
}

// zeroFile overwrites the file's data with zeros and fsyncs it. Only the
// extents that hold data are written: a hole holds nothing to erase, and
// writing into it would need free space that a full disk (the very disk an
// unbind may have to wipe) does not have, while overwriting allocated
// blocks needs none. A file system that cannot tell its holes gets the
// whole length written.
func zeroFile(path string) (int64, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return 0, err
	}
	info, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return 0, err
	}
	zeros := make([]byte, 64<<10)
	var done int64
	for off := int64(0); off < info.Size(); {
		start, end := dataExtent(f, off, info.Size())
		if start >= end {
			break
		}
		for off = start; off < end; {
			n := min(int64(len(zeros)), end-off)
			w, err := f.WriteAt(zeros[:n], off)
			off += int64(w)
			done += int64(w)
			if err != nil {
				_ = f.Close()
				return done, err
			}
		}
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return done, err
	}
	return done, f.Close()
}

// dataExtent returns the first extent holding data at or after off, up to
// size: [start, end). No data left is start == end; a file system without
// SEEK_DATA answers the whole rest.
func dataExtent(f *os.File, off, size int64) (start, end int64) {
	start, err := unix.Seek(int(f.Fd()), off, unix.SEEK_DATA)
	if errors.Is(err, unix.ENXIO) {
		return size, size // only a hole is left
	}
	if err != nil {
		return off, size
	}
	end, err = unix.Seek(int(f.Fd()), start, unix.SEEK_HOLE)
	if err != nil || end > size {
		end = size
	}
	return start, end
}
