package main

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/storepack/storepack/internal/oracle"
)

// startRegistry runs Debian's docker-registry on a free loopback port for
// the test, stopping it by its process id at the end, and returns its
// host:port.
func startRegistry(t *testing.T) string {
	t.Helper()
	bin := oracle.Require(t, "docker-registry")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	host := l.Addr().String()
	l.Close()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.yml")
	conf := fmt.Sprintf("version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: %s\n", filepath.Join(dir, "data"), host)
	if err := os.WriteFile(cfg, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	cmd := exec.Command(bin, "serve", cfg)
	cmd.Stdout, cmd.Stderr = &log, &log
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
				return host
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the registry did not answer on %s: %v", host, err)
		}
	}
}

func TestPushVerb(t *testing.T) {
	host := startRegistry(t)
	dir := specDir(t)
	oci := `export "image" {
  format      = "oci"
  paths       = [source.app.store_path]
  systems     = ["x86_64-linux", "aarch64-linux"]
  tag         = "app:1.0"
  compression = "gzip"
  push        = "` + host + `/team/app:1.0"
  insecure    = true
}
`
	if err := os.WriteFile(filepath.Join(dir, "image.hcl"), []byte(oci), 0o644); err != nil {
		t.Fatal(err)
	}
	line := regexp.MustCompile(`^` + regexp.QuoteMeta(host) + `/team/app:1.0\tsha256:[0-9a-f]{64}\t(\d+) layer blobs uploaded, (\d+) already there\n$`)
	var first string
	for i, want := range []string{"uploaded", "skipped"} {
		var stdout, stderr bytes.Buffer
		if code := run([]string{"push", "-C", dir}, nil, &stdout, &stderr); code != 0 {
			t.Fatalf("push %d: exit %d: %s", i, code, stderr.String())
		}
		m := line.FindStringSubmatch(stdout.String())
		if m == nil {
			t.Fatalf("push %d printed %q", i, stdout.String())
		}
		if want == "uploaded" && (m[1] == "0" || m[2] != "0") || want == "skipped" && (m[1] != "0" || m[2] == "0") {
			t.Errorf("push %d: %s uploaded, %s already there; want every layer %s", i, m[1], m[2], want)
		}
		digest := strings.Split(stdout.String(), "\t")[1]
		if i == 0 {
			first = digest
		} else if digest != first {
			t.Errorf("the second push sent %s, the first %s", digest, first)
		}
	}
	// A named export without a push reference is an error.
	var stdout, stderr bytes.Buffer
	if code := run([]string{"push", "-C", dir, "app"}, nil, &stdout, &stderr); code != 1 || !strings.Contains(stderr.String(), `export "app" has no push reference`) {
		t.Errorf("push of the nar export: exit %d, %s", code, stderr.String())
	}
}
