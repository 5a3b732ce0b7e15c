package bounded

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestReadFile(t *testing.T) {
	dir := t.TempDir()
	small := filepath.Join(dir, "small")
	os.WriteFile(small, []byte("12345"), 0o644)
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	zero := filepath.Join(dir, "zero")
	os.Symlink("/dev/zero", zero)
	for _, c := range []struct {
		name  string
		limit int64
		want  error // nil: read whole
	}{
		{small, 5, nil},
		{small, 4, ErrTooLarge},
		{fifo, 10, ErrNotRegular},
		{zero, 10, ErrNotRegular},
		{dir, 10, ErrNotRegular},
	} {
		b, err := ReadFile(c.name, c.limit)
		switch {
		case c.want == nil && (err != nil || string(b) != "12345"):
			t.Errorf("ReadFile(%s, %d) = %q, %v", c.name, c.limit, b, err)
		case c.want != nil && !errors.Is(err, c.want):
			t.Errorf("ReadFile(%s, %d): error %v, want %v", c.name, c.limit, err, c.want)
		case c.want != nil && !strings.Contains(err.Error(), c.name):
			t.Errorf("ReadFile(%s): error %q does not name the file", c.name, err)
		}
	}
}

func TestReader(t *testing.T) {
	for _, c := range []struct {
		in    string
		limit int64
		fail  bool
	}{
		{"abc", 3, false},
		{"abcd", 3, true},
		{"", 0, false},
	} {
		r := &Reader{R: strings.NewReader(c.in), Limit: c.limit, What: "thing"}
		b, err := io.ReadAll(r)
		if c.fail != errors.Is(err, ErrTooLarge) {
			t.Errorf("%q limit %d: %q, %v", c.in, c.limit, b, err)
		}
		if !c.fail && string(b) != c.in {
			t.Errorf("%q limit %d: read %q", c.in, c.limit, b)
		}
	}
	// An endless stream stops just past the limit.
	r := &Reader{R: zeros{}, Limit: 1 << 20, What: "zeros"}
	if _, err := io.Copy(io.Discard, r); !errors.Is(err, ErrTooLarge) || r.N() > 1<<20+1 {
		t.Errorf("endless stream: %v after %d bytes", err, r.N())
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }
