package countw

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// short takes at most max bytes in all, then fails.
type short struct{ max int }

func (s *short) Write(p []byte) (int, error) {
	n := min(len(p), s.max)
	s.max -= n
	if n < len(p) {
		return n, errors.New("full")
	}
	return n, nil
}

// TestWriter counts what reaches the writer below, also on a short write.
func TestWriter(t *testing.T) {
	var buf bytes.Buffer
	c := &Writer{W: &buf}
	io.WriteString(c, "hello, ")
	io.WriteString(c, "world")
	if c.N != 12 || buf.String() != "hello, world" {
		t.Errorf("counted %d bytes, wrote %q; want 12 and \"hello, world\"", c.N, buf.String())
	}
	c = &Writer{W: &short{max: 5}}
	if n, err := c.Write([]byte("0123456789")); n != 5 || err == nil || c.N != 5 {
		t.Errorf("short write: %d, %v, counted %d; want 5, an error and 5", n, err, c.N)
	}
}
