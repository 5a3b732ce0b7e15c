package fanout

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// TestOrder writes more than the ring holds, by Write and ReadFrom: every
// sink gets every byte, in order.
func TestOrder(t *testing.T) {
	var a, b bytes.Buffer
	w := New(&a, &b)
	var want bytes.Buffer
	for i := range 3000 {
		chunk := bytes.Repeat([]byte{byte(i)}, 1+i%5000)
		want.Write(chunk)
		if _, err := w.Write(chunk); err != nil {
			t.Fatal(err)
		}
	}
	big := strings.Repeat("0123456789", 1<<20)
	want.WriteString(big)
	if n, err := w.ReadFrom(strings.NewReader(big)); err != nil || n != int64(len(big)) {
		t.Fatalf("ReadFrom = %d, %v", n, err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if a.Len() != want.Len() {
		t.Errorf("after Flush, a sink has %d bytes of %d", a.Len(), want.Len())
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), want.Bytes()) || !bytes.Equal(b.Bytes(), want.Bytes()) {
		t.Error("a sink got other bytes")
	}
	if _, err := w.Write([]byte("x")); err == nil {
		t.Error("a write after Close succeeded")
	}
}

type failing struct{ err error }

func (f failing) Write(p []byte) (int, error) { return 0, f.err }

// TestSinkFails: a sink's error comes back from the writes after it and
// from Close, and the other sink gets nothing more.
func TestSinkFails(t *testing.T) {
	errFull := errors.New("disk full")
	var ok bytes.Buffer
	w := New(&ok, failing{errFull})
	var err error
	for range 100 {
		if _, err = w.Write(make([]byte, bufferSize)); err != nil {
			break
		}
	}
	if !errors.Is(err, errFull) {
		t.Errorf("writes after the failure: %v", err)
	}
	if err := w.Close(); !errors.Is(err, errFull) {
		t.Errorf("Close: %v", err)
	}
	if ok.Len() >= 100*bufferSize {
		t.Errorf("the other sink got all %d bytes", ok.Len())
	}
}
