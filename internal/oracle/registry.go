package oracle

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Registry is a CNCF Distribution registry (Debian's docker-registry)
// serving on a free loopback port from a temporary folder.
type Registry struct {
	// Host is 127.0.0.1:PORT.
	Host string
	log  *syncBuffer
}

// syncBuffer is a bytes.Buffer safe for the registry's output goroutine.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// StartRegistry starts a registry for the test, on loopback only, and
// stops it by its process id when the test ends.
func StartRegistry(t testing.TB) *Registry {
	t.Helper()
	bin := Require(t, "docker-registry")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	host := l.Addr().String()
	l.Close()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.yml")
	conf := fmt.Sprintf("version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: %s\n", filepath.Join(dir, "data"), host)
	if err := os.WriteFile(cfg, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	r := &Registry{Host: host, log: &syncBuffer{}}
	cmd := exec.Command(bin, "serve", cfg)
	cmd.Stdout, cmd.Stderr = r.log, r.log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	t.Cleanup(func() {
		if p, err := os.FindProcess(pid); err == nil {
			p.Kill()
		}
		cmd.Wait()
	})
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		resp, err := http.Get("http://" + host + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return r
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the registry did not answer on %s: %v\n%s", host, err, r.log.String())
		}
	}
}

// Log is what the registry has logged so far.
func (r *Registry) Log() string { return r.log.String() }

// BlobUploads counts the blob upload requests (PATCH) in the registry's
// log.
func (r *Registry) BlobUploads() int {
	return strings.Count(r.Log(), "http.request.method=PATCH")
}
