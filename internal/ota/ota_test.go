package ota_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/posagent/posagent/internal/ota"
	"github.com/posagent/posagent/internal/ota/otatest"
	"github.com/posagent/posagent/terminal/remote"
)

// bundleServer serves body over TLS; cut, when set, decides how many bytes
// of a response go out before the connection is dropped (the nth request).
type bundleServer struct {
	*httptest.Server
	mu     sync.Mutex
	n      int
	ranges []string
}

func serve(t *testing.T, body []byte, cut func(n int, from int64) int64, ignoreRange bool) *bundleServer {
	s := &bundleServer{}
	s.Server = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.n++
		n := s.n
		s.ranges = append(s.ranges, r.Header.Get("Range"))
		s.mu.Unlock()
		from := int64(0)
		if rg := r.Header.Get("Range"); rg != "" && !ignoreRange {
			from, _ = strconv.ParseInt(strings.TrimSuffix(strings.TrimPrefix(rg, "bytes="), "-"), 10, 64)
			w.Header().Set("Content-Range", "bytes "+strconv.FormatInt(from, 10)+"-"+strconv.Itoa(len(body)-1)+"/"+strconv.Itoa(len(body)))
			w.Header().Set("Content-Length", strconv.FormatInt(int64(len(body))-from, 10))
			w.WriteHeader(http.StatusPartialContent)
		} else {
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		}
		end := int64(len(body))
		if cut != nil {
			end = min(end, from+cut(n, from))
		}
		w.Write(body[from:end])
		if end < int64(len(body)) {
			// Drop the connection mid-body.
			if hj, ok := w.(http.Hijacker); ok {
				w.(http.Flusher).Flush()
				c, _, _ := hj.Hijack()
				c.Close()
			}
		}
	}))
	t.Cleanup(s.Close)
	return s
}

func bundle(t *testing.T, n int) ([]byte, string) {
	b := make([]byte, n)
	rand.Read(b)
	sum := sha256.Sum256(b)
	return b, hex.EncodeToString(sum[:])
}

func downloader(t *testing.T, s *bundleServer) *ota.Downloader {
	return &ota.Downloader{Client: s.Client(), Dir: t.TempDir(), MaxSize: 1 << 24, Attempts: 3, Backoff: time.Millisecond}
}

func reasonOf(err error) string {
	var de *ota.DownloadError
	if errors.As(err, &de) {
		return de.Reason
	}
	return ""
}

func TestFetch(t *testing.T) {
	body, sum := bundle(t, 300<<10)
	ctx := context.Background()

	t.Run("whole", func(t *testing.T) {
		s := serve(t, body, nil, false)
		d := downloader(t, s)
		p, err := d.Fetch(ctx, s.URL+"/b.raucb", strings.ToUpper(sum), int64(len(body)))
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := os.ReadFile(p); !bytes.Equal(got, body) {
			t.Fatalf("%s holds %d bytes, not the bundle", p, len(got))
		}
		// Again: the complete bundle is checked, not fetched.
		if _, err := d.Fetch(ctx, s.URL+"/b.raucb", sum, int64(len(body))); err != nil || s.n != 1 {
			t.Fatalf("second fetch: %v after %d requests, want 1", err, s.n)
		}
	})
	t.Run("resumed with Range", func(t *testing.T) {
		s := serve(t, body, func(n int, from int64) int64 {
			if n == 1 {
				return 100 << 10
			}
			return 1 << 30
		}, false)
		d := downloader(t, s)
		if _, err := d.Fetch(ctx, s.URL+"/b", sum, int64(len(body))); err != nil {
			t.Fatal(err)
		}
		if len(s.ranges) != 2 || s.ranges[0] != "" || !strings.HasPrefix(s.ranges[1], "bytes=") || s.ranges[1] == "bytes=0-" {
			t.Fatalf("requests %q, want a whole one then a Range from where it broke", s.ranges)
		}
	})
	t.Run("never completes", func(t *testing.T) {
		s := serve(t, body, func(int, int64) int64 { return 50 << 10 }, true)
		d := downloader(t, s)
		_, err := d.Fetch(ctx, s.URL+"/b", sum, int64(len(body)))
		if reasonOf(err) != remote.ReasonDownloadFailed || s.n != 3 {
			t.Fatalf("err %v after %d requests, want download-failed after 3", err, s.n)
		}
	})
	t.Run("bad hash", func(t *testing.T) {
		s := serve(t, body, nil, false)
		d := downloader(t, s)
		_, other := bundle(t, 1)
		_, err := d.Fetch(ctx, s.URL+"/b", other, int64(len(body)))
		if reasonOf(err) != remote.ReasonBadHash {
			t.Fatalf("err %v, want bad-hash", err)
		}
		if ents, _ := os.ReadDir(d.Dir); len(ents) != 0 {
			t.Fatalf("%d files left after a bad hash", len(ents))
		}
	})
	t.Run("bad size", func(t *testing.T) {
		s := serve(t, body, nil, false)
		d := downloader(t, s)
		if _, err := d.Fetch(ctx, s.URL+"/b", sum, int64(len(body))-1); reasonOf(err) != remote.ReasonBadSize {
			t.Fatalf("err %v, want bad-size", err)
		}
		d.MaxSize = 1000
		if _, err := d.Fetch(ctx, s.URL+"/b", sum, int64(len(body))); reasonOf(err) != remote.ReasonBadSize {
			t.Fatalf("over max_size: err %v, want bad-size", err)
		}
	})
	t.Run("HTTP 404 and an untrusted server", func(t *testing.T) {
		s := serve(t, body, nil, false)
		d := downloader(t, s)
		d.Client = http.DefaultClient // does not trust the test CA
		if _, err := d.Fetch(ctx, s.URL+"/b", sum, int64(len(body))); reasonOf(err) != remote.ReasonDownloadFailed {
			t.Fatalf("untrusted: err %v, want download-failed", err)
		}
		nf := httptest.NewTLSServer(http.NotFoundHandler())
		defer nf.Close()
		d.Client = nf.Client()
		if _, err := d.Fetch(ctx, nf.URL+"/b", sum, int64(len(body))); reasonOf(err) != remote.ReasonDownloadFailed {
			t.Fatalf("404: err %v, want download-failed", err)
		}
	})
}

func TestRAUC(t *testing.T) {
	addr := otatest.PrivateBus(t)
	mock := otatest.StartRAUC(t, addr)
	r, err := ota.DialRAUC(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p := t.TempDir() + "/b.raucb"
	os.WriteFile(p, []byte("bundle"), 0o600)
	if err := r.Install(ctx, p); err != nil {
		t.Fatalf("install: %v", err)
	}
	if got := mock.Installed(); len(got) != 1 || string(got[0]) != "bundle" {
		t.Fatalf("installed %q", got)
	}
	mock.FailNext("Failed to check bundle: signature verification failed")
	if err := r.Install(ctx, p); err == nil || !strings.Contains(err.Error(), "signature verification failed") {
		t.Fatalf("failed install: %v, want RAUC's LastError", err)
	}
	if err := r.Mark(ctx, "good"); err != nil {
		t.Fatal(err)
	}
	if m := mock.Marks(); len(m) != 1 || m[0] != "good booted" {
		t.Fatalf("marks %q", m)
	}
	// No RAUC on the bus: an error, not a hang.
	other, err := ota.DialRAUC(otatest.PrivateBus(t))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if err := other.Install(ctx, p); err == nil {
		t.Fatal("install without RAUC: no error")
	}
}
