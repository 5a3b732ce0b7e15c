package substitute

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestNewSource(t *testing.T) {
	for _, tt := range []struct{ url, err string }{
		{"file:///srv/cache", ""},
		{"http://127.0.0.1:8080", ""},
		{"https://cache.example.org/sub", ""},
		{"file://relative", "absolute folder"},
		{"s3://bucket?region=eu-west-1&endpoint=127.0.0.1:7070&scheme=http", ""},
		{"s3://bucket?bogus=1", "unknown parameter"},
		{"ftp://x", "want file://DIR"},
	} {
		_, err := NewSource(tt.url)
		if (tt.err == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), tt.err) {
			t.Errorf("NewSource(%q) = %v, want %q", tt.url, err, tt.err)
		}
	}
}

func TestFileSource(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "nix-cache-info"), []byte("StoreDir: /nix/store\n"), 0o644)
	src, _ := NewSource("file://" + dir)
	rc, err := src.Open(context.Background(), "nix-cache-info")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(rc)
	rc.Close()
	if string(b) != "StoreDir: /nix/store\n" {
		t.Errorf("read %q", b)
	}
	if _, err := src.Open(context.Background(), "x.narinfo"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a missing file: %v, want fs.ErrNotExist", err)
	}
}

// TestHTTPSourceRetries: a 5xx is tried again, a 404 is not found at once,
// and a cache that never answers well fails after Attempts.
func TestHTTPSourceRetries(t *testing.T) {
	defer func(b time.Duration) { Backoff = b }(Backoff)
	Backoff = time.Millisecond
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := calls.Add(1)
		switch r.URL.Path {
		case "/flaky":
			if n%3 != 0 {
				http.Error(w, "busy", http.StatusServiceUnavailable)
				return
			}
			w.Write([]byte("ok"))
		case "/down":
			http.Error(w, "down", http.StatusBadGateway)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	src, _ := NewSource(srv.URL)
	ctx := context.Background()
	calls.Store(0)
	rc, err := src.Open(ctx, "flaky")
	if err != nil {
		t.Fatalf("a cache that answers on the third attempt: %v", err)
	}
	rc.Close()
	if calls.Load() != 3 {
		t.Errorf("%d requests, want 3", calls.Load())
	}
	calls.Store(0)
	if _, err := src.Open(ctx, "missing"); !errors.Is(err, fs.ErrNotExist) || calls.Load() != 1 {
		t.Errorf("a 404: %v after %d requests; want not found after 1", err, calls.Load())
	}
	calls.Store(0)
	if _, err := src.Open(ctx, "down"); err == nil || !strings.Contains(err.Error(), "unreachable after 3 attempts") || calls.Load() != 3 {
		t.Errorf("a cache down: %v after %d requests", err, calls.Load())
	}
}
