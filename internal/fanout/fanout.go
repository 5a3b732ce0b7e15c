// Package fanout hands what is written to it to several writers, each
// written from a goroutine of its own.
package fanout

import (
	"errors"
	"io"
	"sync"
	"sync/atomic"
)

// Writer is an io.Writer that hands what is written to it, in order, to
// several sinks, each written from a goroutine of its own: writing an
// archive to its file and hashing it run on different cores, and neither
// holds up the goroutine producing the bytes. Bytes are copied into a ring
// of buffers (buffers of bufferSize bytes, memory bounded whatever the
// length); a buffer is reused once every sink has taken it. Sinks are
// called with whole buffers; after a sink fails, nothing more is written
// to any sink and Write and Close return its error.
type Writer struct {
	cur    *fanBuf
	free   chan *fanBuf
	sinks  []chan *fanBuf
	wg     sync.WaitGroup
	failed atomic.Bool
	mu     sync.Mutex
	err    error
	n      int64
	closed bool
}

// A Writer holds buffers x bufferSize bytes, 1.5 MiB. An OCI export
// compresses GOMAXPROCS layers at once through two Writers each (the tar
// into the compressor, the blob into its file): buffers of 1 MiB held 24
// MiB of a 2 GB closure's export, for no gain in speed.
const (
	buffers    = 6
	bufferSize = 256 << 10
)

type fanBuf struct {
	b    []byte
	left atomic.Int32
}

// New starts one goroutine per sink.
func New(sinks ...io.Writer) *Writer {
	f := &Writer{free: make(chan *fanBuf, buffers)}
	for range buffers {
		f.free <- &fanBuf{b: make([]byte, 0, bufferSize)}
	}
	for _, w := range sinks {
		ch := make(chan *fanBuf, buffers)
		f.sinks = append(f.sinks, ch)
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			for fb := range ch {
				if !f.failed.Load() {
					if _, err := w.Write(fb.b); err != nil {
						f.fail(err)
					}
				}
				if fb.left.Add(-1) == 0 {
					fb.b = fb.b[:0]
					f.free <- fb
				}
			}
		}()
	}
	return f
}

func (f *Writer) fail(err error) {
	f.mu.Lock()
	if f.err == nil {
		f.err = err
	}
	f.mu.Unlock()
	f.failed.Store(true)
}

func (f *Writer) firstErr() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}

// Write copies p into the buffers, handing each on when full.
func (f *Writer) Write(p []byte) (int, error) {
	if f.closed {
		return 0, errors.New("fanout: write after Close")
	}
	n := 0
	for len(p) > 0 {
		if f.failed.Load() {
			return n, f.firstErr()
		}
		if f.cur == nil {
			f.cur = <-f.free
		}
		k := copy(f.cur.b[len(f.cur.b):cap(f.cur.b)], p)
		f.cur.b = f.cur.b[:len(f.cur.b)+k]
		p, n = p[k:], n+k
		if len(f.cur.b) == cap(f.cur.b) {
			f.send()
		}
	}
	f.n += int64(n)
	return n, nil
}

// ReadFrom copies r into the buffers, reading straight into them.
func (f *Writer) ReadFrom(r io.Reader) (int64, error) {
	var total int64
	for {
		if f.failed.Load() {
			return total, f.firstErr()
		}
		if f.cur == nil {
			f.cur = <-f.free
		}
		k, err := r.Read(f.cur.b[len(f.cur.b):cap(f.cur.b)])
		f.cur.b = f.cur.b[:len(f.cur.b)+k]
		total += int64(k)
		f.n += int64(k)
		if len(f.cur.b) == cap(f.cur.b) {
			f.send()
		}
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}

func (f *Writer) send() {
	f.cur.left.Store(int32(len(f.sinks)))
	for _, ch := range f.sinks {
		ch <- f.cur
	}
	f.cur = nil
}

// Flush hands on what is buffered and waits until every sink has written
// everything written so far: then the sinks are idle until the next Write,
// and the caller may use them directly. It returns the first error a sink
// returned.
func (f *Writer) Flush() error {
	if f.closed {
		return f.firstErr()
	}
	if f.cur != nil && len(f.cur.b) > 0 {
		f.send()
	}
	// Every buffer is back in the free ring once every sink is done with it.
	held := make([]*fanBuf, 0, buffers)
	if f.cur != nil {
		held = append(held, f.cur)
	}
	for len(held) < buffers {
		held = append(held, <-f.free)
	}
	for _, fb := range held {
		if fb != f.cur {
			f.free <- fb
		}
	}
	return f.firstErr()
}

// Close hands on what is left, waits for every sink and returns the first
// error a sink returned.
func (f *Writer) Close() error {
	if f.closed {
		return f.firstErr()
	}
	f.closed = true
	if f.cur != nil && len(f.cur.b) > 0 {
		f.send()
	}
	for _, ch := range f.sinks {
		close(ch)
	}
	f.wg.Wait()
	return f.firstErr()
}
