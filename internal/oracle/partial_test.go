package oracle

import (
	"os"
	"os/exec"
	"testing"
)

// TestPrivatePodmanLeavesSharedState: a private podman's Close (podman
// system reset) removes its own folders and leaves the default podman's
// temporary folder, which the other tests' podman runs need, in place.
func TestPrivatePodmanLeavesSharedState(t *testing.T) {
	podman := Require(t, "podman")
	if os.Geteuid() != 0 {
		t.Skip("the default temporary folder checked here, /run/libpod, is root's podman's")
	}
	const shared = "/run/libpod/alive"
	if b, err := exec.Command(podman, "images").CombinedOutput(); err != nil {
		t.Fatalf("podman images: %v\n%s", err, b)
	}
	if _, err := os.Stat(shared); err != nil {
		t.Fatalf("the default podman has no %s: %v", shared, err)
	}
	p, err := NewPrivatePodman(podman, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if b, err := p.Command("images").CombinedOutput(); err != nil {
		t.Fatalf("private podman images: %v\n%s", err, b)
	}
	if err := p.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	for _, dir := range []string{p.runRoot, p.tmpDir} {
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("Close left %s: %v", dir, err)
		}
	}
	if _, err := os.Stat(shared); err != nil {
		t.Errorf("the private podman's Close removed the shared %s: %v", shared, err)
	}
}
