package ota

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/posagent/posagent/terminal/remote"
)

// DownloadError is a download that did not give the bundle asked for;
// Reason is the update failure word of package remote (download-failed,
// bad-size, bad-hash).
type DownloadError struct {
	Reason string
	Err    error
}

func (e *DownloadError) Error() string { return e.Reason + ": " + e.Err.Error() }
func (e *DownloadError) Unwrap() error { return e.Err }

// Downloader fetches bundles into Dir. A download that breaks goes on
// from the bytes already on disk (an HTTP Range request) at the next
// attempt, in this run or after a reboot.
type Downloader struct {
	Client *http.Client // with the CA of the update server
	Dir    string
	// MaxSize refuses a bundle larger than this (the disk's room).
	MaxSize int64
	// Attempts is how many requests one Fetch makes before it gives up
	// (default 5); Backoff is the pause between them (default 2s).
	Attempts int
	Backoff  time.Duration
	// Stall ends an attempt that received nothing for this long (default
	// 60s).
	Stall time.Duration
	Log   *slog.Logger
}

// Path is where the complete bundle of hash sum lives.
func (d *Downloader) Path(sum string) string { return filepath.Join(d.Dir, sum+".raucb") }

func (d *Downloader) partPath(sum string) string { return filepath.Join(d.Dir, sum+".part") }

// Fetch makes Path(sum) hold exactly size bytes of url whose SHA-256 is
// sum, and returns that path. A complete bundle already there is checked
// again, not fetched; a part left by an earlier attempt is resumed.
func (d *Downloader) Fetch(ctx context.Context, url, sum string, size int64) (string, error) {
	sum = strings.ToLower(sum)
	if len(sum) != 64 {
		return "", &DownloadError{remote.ReasonBadHash, fmt.Errorf("sha256 %q", sum)}
	}
	if d.MaxSize > 0 && size > d.MaxSize {
		return "", &DownloadError{remote.ReasonBadSize, fmt.Errorf("size %d over the limit %d", size, d.MaxSize)}
	}
	if err := os.MkdirAll(d.Dir, 0o700); err != nil {
		return "", &DownloadError{remote.ReasonDownloadFailed, err}
	}
	d.removeOthers(sum)
	final := d.Path(sum)
	if fi, err := os.Stat(final); err == nil && fi.Size() == size {
		if err := checkHash(final, sum); err == nil {
			return final, nil
		}
		_ = os.Remove(final)
	}
	attempts, backoff := d.Attempts, d.Backoff
	if attempts <= 0 {
		attempts = 5
	}
	if backoff <= 0 {
		backoff = 2 * time.Second
	}
	part := d.partPath(sum)
	var last error
	for i := 0; i < attempts; i++ {
		if i > 0 {
			select {
			case <-ctx.Done():
				return "", &DownloadError{remote.ReasonDownloadFailed, ctx.Err()}
			case <-time.After(backoff):
			}
		}
		done, err := d.attempt(ctx, url, part, size)
		if err != nil {
			var de *DownloadError
			if errors.As(err, &de) {
				_ = os.Remove(part)
				return "", err
			}
			last = err
			d.log().Warn("update download interrupted", slog.Int("attempt", i+1), slog.Int64("have", fileSize(part)),
				slog.Int64("size", size), slog.String("err", err.Error()))
			continue
		}
		if done {
			break
		}
	}
	if fileSize(part) != size {
		if last == nil {
			last = errors.New("incomplete")
		}
		return "", &DownloadError{remote.ReasonDownloadFailed, fmt.Errorf("%d of %d bytes after %d attempts: %w", fileSize(part), size, attempts, last)}
	}
	if err := checkHash(part, sum); err != nil {
		_ = os.Remove(part)
		return "", err
	}
	if err := os.Rename(part, final); err != nil {
		return "", &DownloadError{remote.ReasonDownloadFailed, err}
	}
	syncDir(d.Dir)
	return final, nil
}

// attempt requests what part lacks and appends it. It reports whether the
// part is complete; an error without a DownloadError is worth another
// attempt.
func (d *Downloader) attempt(ctx context.Context, url, part string, size int64) (bool, error) {
	have := fileSize(part)
	if have > size {
		_ = os.Remove(part)
		have = 0
	}
	if have == size {
		return true, nil
	}
	stall := d.Stall
	if stall <= 0 {
		stall = 60 * time.Second
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return false, &DownloadError{remote.ReasonDownloadFailed, err}
	}
	if have > 0 {
		req.Header.Set("Range", "bytes="+strconv.FormatInt(have, 10)+"-")
	}
	resp, err := d.Client.Do(req)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	flags := os.O_WRONLY | os.O_CREATE | os.O_APPEND
	switch {
	case resp.StatusCode == http.StatusPartialContent && have > 0:
		var start, total int64
		if _, err := fmt.Sscanf(resp.Header.Get("Content-Range"), "bytes %d-", &start); err != nil || start != have {
			return false, fmt.Errorf("content-range %q for a request from %d", resp.Header.Get("Content-Range"), have)
		}
		if i := strings.LastIndexByte(resp.Header.Get("Content-Range"), '/'); i >= 0 {
			if total, err = strconv.ParseInt(resp.Header.Get("Content-Range")[i+1:], 10, 64); err == nil && total != size {
				return false, &DownloadError{remote.ReasonBadSize, fmt.Errorf("the server has %d bytes, want %d", total, size)}
			}
		}
	case resp.StatusCode == http.StatusOK:
		if resp.ContentLength >= 0 && resp.ContentLength != size {
			return false, &DownloadError{remote.ReasonBadSize, fmt.Errorf("the server has %d bytes, want %d", resp.ContentLength, size)}
		}
		flags |= os.O_TRUNC // no range: from the start
		have = 0
	case resp.StatusCode == http.StatusRequestedRangeNotSatisfiable:
		_ = os.Remove(part)
		return false, fmt.Errorf("range from %d not satisfiable", have)
	case resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests:
		return false, fmt.Errorf("HTTP %s", resp.Status)
	default:
		return false, &DownloadError{remote.ReasonDownloadFailed, fmt.Errorf("HTTP %s", resp.Status)}
	}
	f, err := os.OpenFile(part, flags, 0o600)
	if err != nil {
		return false, &DownloadError{remote.ReasonDownloadFailed, err}
	}
	timer := time.AfterFunc(stall, cancel)
	defer timer.Stop()
	body := io.LimitReader(resp.Body, size-have+1) // one byte more tells a longer body
	buf := make([]byte, 64<<10)
	var copyErr error
	for {
		n, rerr := body.Read(buf)
		if n > 0 {
			timer.Reset(stall)
			have += int64(n)
			if have > size {
				f.Close()
				return false, &DownloadError{remote.ReasonBadSize, fmt.Errorf("the server sent more than %d bytes", size)}
			}
			if _, err := f.Write(buf[:n]); err != nil {
				f.Close()
				return false, &DownloadError{remote.ReasonDownloadFailed, err}
			}
		}
		if rerr != nil {
			if rerr != io.EOF {
				copyErr = rerr
			}
			break
		}
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return false, &DownloadError{remote.ReasonDownloadFailed, err}
	}
	if err := f.Close(); err != nil {
		return false, &DownloadError{remote.ReasonDownloadFailed, err}
	}
	if copyErr != nil {
		return false, copyErr
	}
	if have < size {
		return false, fmt.Errorf("the body ended at %d of %d bytes", have, size)
	}
	return true, nil
}

// Remove deletes every bundle and part in Dir (after an install, or when
// the update ends).
func (d *Downloader) Remove() {
	d.removeOthers("")
}

// removeOthers deletes the bundles and parts of other hashes: one update
// at a time, and the disk is the merchant's.
func (d *Downloader) removeOthers(keep string) {
	ents, err := os.ReadDir(d.Dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		name := e.Name()
		if keep != "" && strings.HasPrefix(name, keep+".") {
			continue
		}
		if strings.HasSuffix(name, ".raucb") || strings.HasSuffix(name, ".part") {
			_ = os.Remove(filepath.Join(d.Dir, name))
		}
	}
}

func (d *Downloader) log() *slog.Logger {
	if d.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return d.Log
}

func checkHash(path, sum string) error {
	f, err := os.Open(path)
	if err != nil {
		return &DownloadError{remote.ReasonDownloadFailed, err}
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return &DownloadError{remote.ReasonDownloadFailed, err}
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != sum {
		return &DownloadError{remote.ReasonBadHash, fmt.Errorf("sha256 %s, want %s", got, sum)}
	}
	return nil
}

func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

func syncDir(dir string) {
	if f, err := os.Open(dir); err == nil {
		_ = f.Sync()
		f.Close()
	}
}
