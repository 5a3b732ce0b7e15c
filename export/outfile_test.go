package export

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
)

// TestWritebackFlushes: a writebackFile makes what was written durable
// every flushChunk bytes while writes go on, the bytes in the file are
// the bytes written (the pages it drops from the page cache read back
// from the disk), and a failed flush is the error of stop even though
// the file reports it to that flush alone.
func TestWritebackFlushes(t *testing.T) {
	data, r := randomBytes(3<<20 + 123)
	for _, c := range []struct {
		name    string
		fail    bool
		flushes int64 // at least
	}{
		{"flushes", false, 5},
		{"a flush fails", true, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			f, err := os.Create(filepath.Join(t.TempDir(), "out"))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			var flushes atomic.Int64
			failure := errors.New("no space left on the device's cache")
			w := newWritebackFile(f, writeback{chunk: 64 << 10, flushChunk: 512 << 10, flush: func(f *os.File) error {
				flushes.Add(1)
				if c.fail {
					return failure
				}
				return flushData(f)
			}})
			writeUneven(t, w, data, r)
			err = w.stop()
			if c.fail {
				if !errors.Is(err, failure) || !strings.Contains(err.Error(), "writing to disk") {
					t.Errorf("stop after a failed flush: %v, want the flush's error", err)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if n := flushes.Load(); n < c.flushes || c.fail && n != 1 {
				t.Errorf("%d flushes, want at least %d (and one only after a failure)", n, c.flushes)
			}
			got, err := os.ReadFile(f.Name())
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, data) {
				t.Errorf("the file holds %d bytes that are not the %d written", len(got), len(data))
			}
		})
	}
}

// writeUneven writes data to w in writes of uneven sizes, as an archive's
// headers and files make them; each one waits for w's goroutine to take
// its signal, so that none is dropped for a busy goroutine.
func writeUneven(t *testing.T, w *writebackFile, data []byte, r *rand.Rand) {
	t.Helper()
	for p := data; len(p) > 0; {
		n := min(len(p), 1+r.IntN(96<<10))
		if _, err := w.Write(p[:n]); err != nil {
			t.Fatal(err)
		}
		p = p[n:]
		waitIdle(w)
	}
}

// waitIdle waits until w's goroutine has taken the last signal.
func waitIdle(w *writebackFile) {
	for len(w.signal) > 0 {
		select {
		case <-w.stopped:
			return
		default:
			runtime.Gosched()
		}
	}
}

// randomBytes returns n random bytes and the generator that made them.
func randomBytes(n int) ([]byte, *rand.Rand) {
	data := make([]byte, n)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	return data, r
}
