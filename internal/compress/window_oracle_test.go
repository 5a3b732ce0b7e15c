package compress

import (
	"bytes"
	"os/exec"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/storepack/storepack/format"
	"github.com/storepack/storepack/internal/oracle"
)

// TestZstdWindowAsLibzstd: zstd's own tool at its default level (-3)
// writes a frame of a long stream of unknown size (read from a pipe)
// with the window that storepack's zstd streams record.
func TestZstdWindowAsLibzstd(t *testing.T) {
	bin := oracle.Require(t, "zstd")
	cmd := exec.Command(bin, "-3", "-c")
	cmd.Stdin = bytes.NewReader(sample(6 << 20))
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("zstd -3: %v", err)
	}
	var theirs, ours zstd.Header
	if err := theirs.Decode(out); err != nil {
		t.Fatal(err)
	}
	if err := ours.Decode(compressed(t, sample(6<<20), format.Zstd, Options{}, 1<<16, 1)); err != nil {
		t.Fatal(err)
	}
	if theirs.WindowSize != ZstdWindow || ours.WindowSize != theirs.WindowSize {
		t.Errorf("window: zstd -3 %d, storepack %d, ZstdWindow %d", theirs.WindowSize, ours.WindowSize, ZstdWindow)
	}
}
