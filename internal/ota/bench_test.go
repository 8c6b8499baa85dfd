package ota_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/posagent/posagent/internal/ota"
)

// BenchmarkFetch32MiB: a 32 MiB bundle over loopback HTTPS into a file,
// fsynced, then hashed again from disk (what Fetch does for every bundle).
func BenchmarkFetch32MiB(b *testing.B) {
	body := make([]byte, 32<<20)
	rand.Read(body)
	s := sha256.Sum256(body)
	sum := hex.EncodeToString(s[:])
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.ServeContent(w, r, "b.raucb", fileTime, byteReader(body))
	}))
	defer srv.Close()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		d := &ota.Downloader{Client: srv.Client(), Dir: b.TempDir(), MaxSize: 1 << 30}
		p, err := d.Fetch(context.Background(), srv.URL+"/b.raucb", sum, int64(len(body)))
		if err != nil {
			b.Fatal(err)
		}
		os.Remove(p)
	}
}

var fileTime = time.Time{}

func byteReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }
