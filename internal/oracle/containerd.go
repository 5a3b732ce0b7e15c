package oracle

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// Containerd is a containerd daemon of the test's own, its root, state
// and socket under a temporary folder, with the CRI plugin off.
type Containerd struct {
	// Socket is the daemon's gRPC socket, for `ctr -a`.
	Socket string
	ctr    string
	log    *syncBuffer
}

// StartContainerd starts containerd for the test and stops it when the
// test ends. containerd needs root (it mounts snapshots).
func StartContainerd(t testing.TB) *Containerd {
	t.Helper()
	bin := Require(t, "containerd")
	ctr := Require(t, "ctr")
	RequireRoot(t)
	// The socket's path must fit a sockaddr_un (108 bytes), which
	// t.TempDir's long names can pass.
	dir, err := os.MkdirTemp("", "ctrd-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	c := &Containerd{Socket: filepath.Join(dir, "c.sock"), ctr: ctr, log: &syncBuffer{}}
	conf := fmt.Sprintf("version = 2\nroot = %q\nstate = %q\ndisabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n[grpc]\n  address = %q\n",
		filepath.Join(dir, "root"), filepath.Join(dir, "state"), c.Socket)
	cfg := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(cfg, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--config", cfg)
	cmd.Stdout, cmd.Stderr = c.log, c.log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		// Snapshots may still be mounted under the root.
		exec.Command("sh", "-c", "grep -o ' "+dir+"[^ ]*' /proc/mounts | xargs -r -n1 umount -l").Run()
	})
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if exec.Command(ctr, "-a", c.Socket, "version").Run() == nil {
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("containerd did not answer on %s\n%s", c.Socket, c.log.String())
		}
	}
}

// Ctr runs `ctr -a SOCKET -n test ARGS...` and returns its combined
// output; a failure fails the test, with the daemon's log.
func (c *Containerd) Ctr(t testing.TB, args ...string) string {
	t.Helper()
	out, err := exec.Command(c.ctr, append([]string{"-a", c.Socket, "-n", "test"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("ctr %v: %v\n%s\ncontainerd's log:\n%s", args, err, out, c.log.String())
	}
	return string(out)
}
