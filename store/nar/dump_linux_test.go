package nar_test

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/storepack/storepack/store/nar"
)

// openFds counts the process's open file descriptors.
func openFds(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// TestDumpClosesEveryFile walks trees of many files, which the readers
// close in batches, to the end and to a destination that fails part way:
// no file stays open.
func TestDumpClosesEveryFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tree")
	writeTree(t, dir)
	for i := range 600 {
		p := filepath.Join(dir, "many", fmt.Sprintf("d%d", i%7), fmt.Sprintf("f%03d", i))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		data := strings.Repeat("z", i*37%5000)
		if i%97 == 0 {
			data = strings.Repeat("L", 600<<10+i) // spans buffers
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	before := openFds(t)
	for range 3 {
		if _, _, err := nar.Hash(dir); err != nil {
			t.Fatal(err)
		}
	}
	for _, limit := range []int{0, 4 << 10, 300 << 10, 2 << 20} {
		if err := nar.Dump(&failingWriter{limit: limit}, dir); !errors.Is(err, errSink) {
			t.Errorf("limit %d: error %v, want %v", limit, err, errSink)
		}
	}
	if err := nar.Dump(io.Discard, dir); err != nil {
		t.Fatal(err)
	}
	if after := openFds(t); after != before {
		t.Errorf("%d files open after the walks, %d before", after, before)
	}
}
