package substitute

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/storepack/storepack/internal/bounded"
	"github.com/storepack/storepack/internal/signing"
	"github.com/storepack/storepack/internal/timeouts"
	"github.com/storepack/storepack/store"
	"github.com/storepack/storepack/store/binarycache"
	"github.com/storepack/storepack/store/nar"
)

const storeDir = store.Dir("/nix/store")

// testCache is a binary cache in memory: uncompressed NARs, signed.
type testCache struct {
	key   signing.SecretKey
	files map[string][]byte
}

func newTestCache(t *testing.T) *testCache {
	t.Helper()
	k, err := signing.GenerateKey("test-1")
	if err != nil {
		t.Fatal(err)
	}
	return &testCache{key: k, files: map[string][]byte{"nix-cache-info": []byte("StoreDir: /nix/store\n")}}
}

// add puts an item whose NAR is a folder holding a file of content.
func (c *testCache) add(t *testing.T, base, content string) store.Path {
	t.Helper()
	f := filepath.Join(t.TempDir(), "item")
	os.Mkdir(f, 0o755)
	os.WriteFile(filepath.Join(f, "file"), []byte(content), 0o644)
	var b bytes.Buffer
	if err := nar.Dump(&b, f); err != nil {
		t.Fatal(err)
	}
	p := storeDir.Join(base)
	sum := store.Hash(sha256.Sum256(b.Bytes()))
	ni := &binarycache.NarInfo{StorePath: p, URL: "nar/" + sum.Hex() + ".nar", Compression: "none",
		FileHash: sum, FileSize: int64(b.Len()), NarHash: sum, NarSize: int64(b.Len())}
	ni.Sigs = []string{c.key.Sign(ni.Fingerprint())}
	text, err := ni.MarshalText()
	if err != nil {
		t.Fatal(err)
	}
	c.files[p.HashPart()+".narinfo"] = text
	c.files[ni.URL] = b.Bytes()
	return p
}

func (c *testCache) dir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for name, b := range c.files {
		os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755)
		os.WriteFile(filepath.Join(dir, name), b, 0o644)
	}
	return dir
}

// serve serves the cache, through handle when it returns true.
func (c *testCache) serve(t *testing.T, handle func(w http.ResponseWriter, r *http.Request) bool) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if handle != nil && handle(w, r) {
			return
		}
		b, ok := c.files[strings.TrimPrefix(r.URL.Path, "/")]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Write(b)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// shortTimeouts lowers the bounds of waits, for the sources made next.
func shortTimeouts(t *testing.T) {
	saved := []time.Duration{timeouts.Connect, timeouts.Header, timeouts.Idle, Backoff}
	timeouts.Connect, timeouts.Header, timeouts.Idle, Backoff = time.Second, 300*time.Millisecond, 300*time.Millisecond, time.Millisecond
	timeouts.Reset()
	t.Cleanup(func() {
		timeouts.Connect, timeouts.Header, timeouts.Idle, Backoff = saved[0], saved[1], saved[2], saved[3]
		timeouts.Reset()
	})
}

// fetchFrom looks p up in the cache at url and fetches it into dir.
func fetchFrom(t *testing.T, url string, c *testCache, dir string, ps ...store.Path) error {
	t.Helper()
	s, err := New([]string{url}, []string{c.key.Public().String()}, storeDir, dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := s.InfoAll(ctx, ps); err != nil {
		return err
	}
	return s.FetchAll(ctx, ps)
}

// TestHostileHTTPCache: a cache that stalls, trickles, hangs before its
// headers or serves oversized files is given up with an error naming it
// (its password redacted), in bounded time; a slow cache that keeps
// sending is waited for.
func TestHostileHTTPCache(t *testing.T) {
	shortTimeouts(t)
	c := newTestCache(t)
	p := c.add(t, strings.Repeat("a", 32)+"-hello", strings.Repeat("hello\n", 5000))
	narURL := ""
	for name := range c.files {
		if strings.HasPrefix(name, "nar/") {
			narURL = "/" + name
		}
	}
	var narRequests atomic.Int32
	for _, tt := range []struct {
		name   string
		handle func(w http.ResponseWriter, r *http.Request) bool
		want   string // "" for success
		tries  int32  // NAR requests expected, 0: any
	}{
		{"slow but steady", func(w http.ResponseWriter, r *http.Request) bool {
			if r.URL.Path != narURL {
				return false
			}
			narRequests.Add(1)
			b := c.files[narURL[1:]]
			for i := 0; i < len(b); i += len(b)/8 + 1 {
				w.Write(b[i:min(i+len(b)/8+1, len(b))])
				w.(http.Flusher).Flush()
				time.Sleep(100 * time.Millisecond) // 0.9 s in all, more than IdleTimeout
			}
			return true
		}, "", 1},
		{"stalls mid-body", func(w http.ResponseWriter, r *http.Request) bool {
			if r.URL.Path != narURL {
				return false
			}
			narRequests.Add(1)
			w.Write(c.files[narURL[1:]][:100])
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
			case <-time.After(10 * time.Second):
			}
			return true
		}, "no data for 300ms", int32(Attempts)},
		{"no headers", func(w http.ResponseWriter, r *http.Request) bool {
			if r.URL.Path != narURL {
				return false
			}
			narRequests.Add(1)
			select {
			case <-r.Context().Done():
			case <-time.After(10 * time.Second):
			}
			return true
		}, "timeout awaiting response headers", int32(Attempts)},
		{"narinfo too large", func(w http.ResponseWriter, r *http.Request) bool {
			if !strings.HasSuffix(r.URL.Path, ".narinfo") {
				return false
			}
			w.Write(bytes.Repeat([]byte("x"), bounded.NarInfo+10))
			return true
		}, "more than 1048576 bytes: too large", 0},
		{"nix-cache-info endless", func(w http.ResponseWriter, r *http.Request) bool {
			if r.URL.Path != "/nix-cache-info" {
				return false
			}
			for range 100 {
				if _, err := w.Write(make([]byte, 1<<16)); err != nil {
					break
				}
			}
			return true
		}, "nix-cache-info: more than 65536 bytes: too large", 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			narRequests.Store(0)
			srv := c.serve(t, tt.handle)
			url := strings.Replace(srv.URL, "http://", "http://user:hunter2@", 1)
			start := time.Now()
			err := fetchFrom(t, url, c, t.TempDir(), p)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("fetch: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("fetch: %v, want %q", err, tt.want)
			}
			if err != nil && (strings.Contains(err.Error(), "hunter2") || !strings.Contains(err.Error(), "user:xxxxx@127.0.0.1")) {
				t.Errorf("the error does not name the cache with its password redacted: %v", err)
			}
			if tt.tries != 0 && narRequests.Load() != tt.tries {
				t.Errorf("%d NAR requests, want %d", narRequests.Load(), tt.tries)
			}
			if d := time.Since(start); d > 8*time.Second {
				t.Errorf("took %s", d) // a sanity bound, far above the timeouts
			}
		})
	}
}

// TestFileCacheIrregular: a file:// cache whose files are FIFOs or linked
// to devices is refused at once, naming the file.
func TestFileCacheIrregular(t *testing.T) {
	c := newTestCache(t)
	p := c.add(t, strings.Repeat("b", 32)+"-x", "x")
	for _, tt := range []struct {
		name, file string
		spoil      func(string) error
		want       string
	}{
		{"narinfo FIFO", p.HashPart() + ".narinfo", func(f string) error { return syscall.Mkfifo(f, 0o644) }, "a FIFO"},
		{"narinfo /dev/zero", p.HashPart() + ".narinfo", func(f string) error { return os.Symlink("/dev/zero", f) }, "a character device"},
		{"nix-cache-info /dev/zero", "nix-cache-info", func(f string) error { return os.Symlink("/dev/zero", f) }, "a character device"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := c.dir(t)
			f := filepath.Join(dir, tt.file)
			os.Remove(f)
			if err := tt.spoil(f); err != nil {
				t.Fatal(err)
			}
			err := fetchFrom(t, "file://"+dir, c, t.TempDir(), p)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), f) || !errors.Is(err, bounded.ErrNotRegular) {
				t.Errorf("fetch: %v, want %q naming %s", err, tt.want, f)
			}
		})
	}
}

// TestSameNAR: items with byte-identical NARs share one folder; fetching
// them in parallel, and from concurrent substituters sharing the folder
// (as concurrent runs do), never fails and leaves no temporary folder.
func TestSameNAR(t *testing.T) {
	c := newTestCache(t)
	var ps []store.Path
	for i := range 8 {
		ps = append(ps, c.add(t, fmt.Sprintf("%032d-same", i), "same bytes\n"))
	}
	srv := c.serve(t, func(w http.ResponseWriter, r *http.Request) bool {
		if strings.HasPrefix(r.URL.Path, "/nar/") {
			time.Sleep(20 * time.Millisecond) // let the fetches overlap
		}
		return false
	})
	for round := range 3 {
		dir := t.TempDir()
		var wg sync.WaitGroup
		errs := make([]error, 4)
		for i := range errs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = fetchFrom(t, srv.URL, c, dir, ps...)
			}()
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		ents, _ := os.ReadDir(dir)
		var names []string
		for _, e := range ents {
			if e.Name() != ".lock" {
				names = append(names, e.Name())
			}
		}
		if len(names) != 1 {
			t.Errorf("round %d: the substitutes folder holds %q, want one NAR", round, names)
		}
	}
}

// TestSweepSubstitutes: a run sweeps the temporary folders killed runs
// left in the substitutes folder (read-only ones too), but not while
// another run uses the folder.
func TestSweepSubstitutes(t *testing.T) {
	c := newTestCache(t)
	p := c.add(t, strings.Repeat("c", 32)+"-x", "x")
	q := c.add(t, strings.Repeat("d", 32)+"-y", "y")
	dir := t.TempDir()
	left := filepath.Join(dir, ".0123.tmp-dead")
	os.MkdirAll(filepath.Join(left, "sub"), 0o755)
	os.Chmod(left, 0o555)
	// Another run holds the folder: nothing is swept.
	lock, err := os.Create(filepath.Join(dir, ".lock"))
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_SH); err != nil {
		t.Fatal(err)
	}
	if err := fetchFrom(t, "file://"+c.dir(t), c, dir, p); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(left); err != nil {
		t.Errorf("swept while another run used the folder: %v", err)
	}
	lock.Close()
	if err := fetchFrom(t, "file://"+c.dir(t), c, dir, q); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(left); err == nil {
		t.Error("a killed run's temporary folder was not swept")
	}
}
