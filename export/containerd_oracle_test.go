package export

import (
	"strings"
	"testing"

	"github.com/storepack/storepack/format"
	"github.com/storepack/storepack/internal/oracle"
	"github.com/storepack/storepack/internal/reference"
)

// TestContainerdImport imports docker archives and oci-archives into a
// containerd of the test's own (`ctr images import`): containerd names
// each image by the full name in the archive's index.json
// (io.containerd.image.name, as `docker save` writes it), so that a short
// tag is found as docker.io/library/NAME:TAG, and runs it.
func TestContainerdImport(t *testing.T) {
	oracle.Require(t, "runc")
	c := oracle.StartContainerd(t)
	tests := []struct {
		name, tag, full string
		docker          bool
	}{
		{"docker archive, short tag", "runnable:1.0", "docker.io/library/runnable:1.0", true},
		{"docker archive, registry tag", "localhost/runnable:2", "localhost/runnable:2", true},
		{"oci-archive, short tag", "runnable-oci:3", "docker.io/library/runnable-oci:3", false},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if full, err := reference.Normalize(tt.tag); err != nil || full != tt.full {
				t.Fatalf("Normalize(%q) = %q, %v", tt.tag, full, err)
			}
			var file string
			if tt.docker {
				e, _ := runnableExport(t, "/gnu/store", tt.tag, 0, "x86_64-linux")
				file, _ = writeDockerFile(t, e)
			} else {
				e, _ := runnableOCI(t, "/gnu/store", tt.tag, format.Gzip, "x86_64-linux")
				_, file, _ = writeOCIOutputs(t, e)
			}
			out := c.Ctr(t, "images", "import", file)
			if !strings.Contains(out, tt.full) {
				t.Errorf("ctr images import printed %q, want it to name %s", out, tt.full)
			}
			if ls := c.Ctr(t, "images", "ls", "-q"); !strings.Contains(ls, tt.full+"\n") {
				t.Fatalf("ctr images ls lists %q, want %s", ls, tt.full)
			}
			id := "storepack-test-" + string(rune('a'+i))
			got := strings.TrimSpace(c.Ctr(t, "run", "--rm", "--net-host", tt.full, id))
			if want := runnableOutput + " from cmd"; got != want {
				t.Errorf("ctr run printed %q, want %q", got, want)
			}
		})
	}
}
