package nar

import (
	"bytes"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
)

// TestDumpCounting checks that the counter DumpCounting adds to ends at
// the NAR's length and that the NAR is Dump's.
func TestDumpCounting(t *testing.T) {
	dir := t.TempDir()
	big := bytes.Repeat([]byte("0123456789abcdef"), 100_000) // several chunks
	tree := filepath.Join(dir, "tree")
	for name, data := range map[string][]byte{"a/big": big, "a/small": []byte("small\n"), "empty": nil} {
		p := filepath.Join(tree, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, path := range []string{tree, filepath.Join(tree, "a", "small"), filepath.Join(tree, "empty")} {
		t.Run(filepath.Base(path), func(t *testing.T) {
			var want, got bytes.Buffer
			if err := Dump(&want, path); err != nil {
				t.Fatal(err)
			}
			c := &counter{}
			done := &c.bytes
			done.Store(7) // counts add to what is there
			n, err := DumpCounting(&got, path, c)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got.Bytes(), want.Bytes()) {
				t.Error("DumpCounting wrote another NAR than Dump")
			}
			if n != int64(want.Len()) || done.Load() != 7+n {
				t.Errorf("returned %d, counted %d; want %d and 7 + that", n, done.Load()-7, want.Len())
			}
		})
	}
}

// counter is a Counter for tests.
type counter struct {
	bytes atomic.Int64
	items atomic.Int64
}

func (c *counter) Bytes() *atomic.Int64 { return &c.bytes }

func (c *counter) Done(items, bytes int64) {
	c.items.Add(items)
	c.bytes.Add(bytes)
}
