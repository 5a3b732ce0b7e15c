package image

// Streams cut into frames, the frames compressed in parallel: the
// plumbing shared by eStargz (a gzip member per file chunk, estargz.go)
// and zstd:chunked (a zstd frame per file's contents, lazy.go).
//
// A frame's compressed bytes depend only on its input (a new encoder,
// or one reset, starts each), so frames can be compressed on several
// goroutines and written in order, and the blob is the same whatever
// the number of goroutines. A framer takes the stream from one
// goroutine (the layer's encoder, which reads its tar): bytes for the
// frame at hand (Write, readFrom) and cuts between frames (cut). It
// collects them in jobs of about frameJobSize bytes of input, each
// compressed on a goroutine of its own into a buffer, and writes the
// buffers in order on another:
//
//   - A frame longer than what is left of a job (a large file's
//     contents, a long run of headers) goes on in the next job: the
//     encoder, and the hash of the frame's digested bytes, are handed
//     from one job to the next, which waits for them. So a job holds at
//     most frameJobSize bytes of contents, however large a file (the
//     headers of one entry can add a little more), and a large file is
//     never in memory whole.
//   - A job that goes on with a frame of the job before is handed on at
//     the next cut, however short, so that the frames after it do not
//     wait for that long frame: several long frames (the chunks of a
//     large file) are compressed at once.
//   - The first digested bytes of a frame (a chunk of a file, a file's
//     contents) are hashed by the goroutine that compresses them; the
//     writer, which knows where each frame starts and ends in the blob,
//     hands both and the digest to the frame's sink (its TOC entry).
//
// Bounds, over all the layers written at once: jobs in flight
// (compressing or waiting to be written) take one of frameSlots, two for
// each CPU and two more, or each layer its own one more (so that a layer
// whose writer waits does not hold up the others); at most GOMAXPROCS
// jobs compress at once (frameCPUs), the earliest first, each with an
// encoder of its own, reused from job to job. A job's input is given
// back once compressed, its output is kept in blocks of what it takes;
// both are reused. So the jobs in flight hold about frameJobSize for
// each slot, 1.5 MiB with two CPUs: storepack's heap is held near 40 MiB
// (cmd/storepack's memoryLimit), and a few MiB more (eStargz's jobs were
// a MiB and a 4 MiB chunk, up to five at once) had the collector run
// without end. More slots would let a large file's chunks, each
// compressed on one goroutine, be compressed at once with those after
// them; on two CPUs they cost more in collections than they save.

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"runtime"
	"slices"
	"sync"

	digest "github.com/opencontainers/go-digest"

	"github.com/storepack/storepack/internal/blockbuf"
	"github.com/storepack/storepack/internal/countw"
)

// frameJobSize is the input a job holds: what is read into it before it
// is handed to a compressing goroutine.
const frameJobSize = 256 << 10

// frameJobSlack is how far the headers after a file may take a job past
// frameJobSize before the frame they are in goes on in the next job.
const frameJobSlack = 16 << 10

// frameSlots bounds the jobs in flight, over every layer written at once:
// enough for every CPU to compress a job while the next is read and the
// one before waits to be written.
var frameSlots = sync.OnceValue(func() chan struct{} {
	return make(chan struct{}, 2*runtime.GOMAXPROCS(0)+2)
})

// frameCPUs bounds the jobs compressing at once.
var frameCPUs = sync.OnceValue(func() chan struct{} {
	return make(chan struct{}, runtime.GOMAXPROCS(0))
})

// frameInputs keeps the input buffers of jobs compressed for the next
// jobs.
var frameInputs = sync.OnceValue(func() chan []byte {
	return make(chan []byte, cap(frameSlots())+runtime.GOMAXPROCS(0)+1)
})

func getFrameInput() []byte {
	select {
	case b := <-frameInputs():
		return b
	default:
	}
	// At its size once: buffers grown by doubling leave garbage that the
	// runtime gives back to the system and faults in again.
	return make([]byte, 0, frameJobSize+frameJobSlack+4<<10)
}

func putFrameInput(b []byte) {
	select {
	case frameInputs() <- b[:0]:
	default:
	}
}

// frameBlocks keeps the output blocks of jobs written for the next
// jobs: as many as the jobs in flight take when they compress to half
// their input.
var frameBlocks = sync.OnceValue(func() chan []byte {
	return make(chan []byte, cap(frameSlots())*frameJobSize/blockbuf.BlockSize/2)
})

// newBlockBuffer is a buffer of a job's output or a TOC, in blocks kept
// for the next ones: no more memory than it holds, and none left to the
// garbage collector.
func newBlockBuffer() blockbuf.Buffer { return blockbuf.Buffer{Pool: frameBlocks()} }

// frameEncoder compresses frames one after another, each as a new
// encoder would.
type frameEncoder interface {
	// begin starts a frame, compressed into w.
	begin(w io.Writer)
	// output points the frame at hand to w, where it goes on.
	output(w io.Writer)
	io.Writer
	// end ends the frame at hand; final says it is the stream's last.
	end(final bool) error
}

// frameCodec makes the encoders of one kind of frame and keeps those
// between jobs.
//
// A zstd encoder holds its window's history (2 MiB) once it has
// compressed a frame longer than a block, and keeps it: frames of known
// length from largeFrom on (a file's contents) are compressed at most
// one for each CPU at a time, over every layer, by encoders kept for
// them (idleLarge), and the other frames by encoders that hold no
// history. One at a time kept a layer's large files on one core.
type frameCodec struct {
	newEncoder func() (frameEncoder, error)
	// largeFrom is the length from which a frame makes an encoder large;
	// 0: none does.
	largeFrom int64
	idle      chan *frameState
	idleLarge chan *frameState
	// large holds a token for each large frame cut and not yet
	// compressed, GOMAXPROCS at most: a framer takes one in stream
	// order, and gives it back when the frame is compressed.
	large chan struct{}
}

func newFrameCodec(largeFrom int64, newEncoder func() (frameEncoder, error)) *frameCodec {
	return &frameCodec{newEncoder: newEncoder, largeFrom: largeFrom,
		idle: make(chan *frameState, runtime.GOMAXPROCS(0)), idleLarge: make(chan *frameState, runtime.GOMAXPROCS(0)), large: make(chan struct{}, runtime.GOMAXPROCS(0))}
}

// frameState is an encoder and the hash of its frame's digested bytes.
type frameState struct {
	enc frameEncoder
	h   hash.Hash
	n   int64 // bytes of the frame at hand so far
	// large: the encoder holds a large frame's memory.
	large bool
	// hold: the frame at hand's hold of the codec's large slot.
	hold *largeHold
}

// largeHold is a frame's hold of its codec's large slot.
type largeHold struct {
	once sync.Once
	c    chan struct{}
}

func (h *largeHold) release() {
	if h != nil {
		h.once.Do(func() { <-h.c })
	}
}

// get is an encoder, large or not.
func (c *frameCodec) get(large bool) (*frameState, error) {
	idle := c.idle
	if large {
		idle = c.idleLarge
	}
	select {
	case s := <-idle:
		return s, nil
	default:
	}
	enc, err := c.newEncoder()
	if err != nil {
		return nil, err
	}
	return &frameState{enc: enc, h: sha256.New(), large: large}, nil
}

// put keeps s for another frame, unless as many wait.
func (c *frameCodec) put(s *frameState) {
	s.enc.output(nil)
	idle := c.idle
	if s.large {
		idle = c.idleLarge
	}
	select {
	case idle <- s:
	default:
	}
}

// switchWriter writes to w, which changes from job to job.
type switchWriter struct{ w io.Writer }

func (s *switchWriter) Write(p []byte) (int, error) { return s.w.Write(p) }

// frameSink is told where its frame is in the blob, [start, end), and
// the digest of the frame's digested bytes.
type frameSink interface {
	framed(start, end int64, d digest.Digest)
}

// framePart is the part of a frame in a job: raw[start:end] of its
// input, compressed to z[zstart:zend].
type framePart struct {
	start, end int
	// cont: the frame started in an earlier job, whose encoder goes on;
	// open: it goes on in the next job, which gets the encoder.
	cont, open bool
	// final: the stream's last frame.
	final bool
	// sink: the frame's, in its first part.
	sink frameSink
	// hold: a large frame's hold of its codec's large slot, in its first
	// part.
	hold *largeHold
	// digest: bytes of the frame's digested bytes from start; digestEnd:
	// the last of them are here, and d is their digest.
	digest    int
	digestEnd bool
	d         digest.Digest

	zstart, zend int
}

// frameJob is the parts of frames compressed on one goroutine.
type frameJob struct {
	raw     []byte // given back once compressed
	parts   []framePart
	z       blockbuf.Buffer
	prev    *frameJob        // the job before, when the first part goes on from it
	handoff chan *frameState // the encoder of an open last part
	done    chan struct{}    // closed when compressed
	err     error
	slot    chan struct{} // the slot it holds until written
	abort   bool          // not to be compressed: the input was broken
}

var errFrameAborted = errors.New("not compressed after an error")

// compress compresses j's parts into j.z, and hashes their digested
// bytes.
func (j *frameJob) compress(c *frameCodec) {
	defer close(j.done)
	defer func() {
		putFrameInput(j.raw)
		j.raw = nil
	}()
	if j.abort {
		j.err = errFrameAborted
		return
	}
	var s *frameState
	if j.parts[0].cont {
		<-j.prev.done
		if j.prev.err != nil {
			j.err = j.prev.err
			return
		}
		s = <-j.prev.handoff
		j.prev = nil // not to keep every job before
	}
	frameCPUs() <- struct{}{}
	defer func() { <-frameCPUs() }()
	if err := j.compressParts(c, s); err != nil {
		j.err = err
	}
}

func (j *frameJob) compressParts(c *frameCodec, s *frameState) (err error) {
	defer func() {
		if err != nil && s != nil {
			s.hold.release()
		}
	}()
	for i := range j.parts {
		p := &j.parts[i]
		if p.cont {
			s.enc.output(&j.z)
		} else {
			if s != nil && s.large != (p.hold != nil) {
				c.put(s)
				s = nil
			}
			if s == nil {
				if s, err = c.get(p.hold != nil); err != nil {
					p.hold.release()
					return err
				}
			}
			s.enc.begin(&j.z)
			s.n, s.hold = 0, p.hold
			if p.sink != nil {
				s.h.Reset()
			}
		}
		p.zstart = int(j.z.Len())
		if _, err := s.enc.Write(j.raw[p.start:p.end]); err != nil {
			return err
		}
		s.n += int64(p.end - p.start)
		if p.digest > 0 {
			s.h.Write(j.raw[p.start : p.start+p.digest])
		}
		if p.digestEnd {
			p.d = digest.NewDigest(digest.SHA256, s.h)
		}
		if p.open {
			p.zend = int(j.z.Len())
			s.enc.output(nil)
			j.handoff <- s
			return nil
		}
		if err := s.enc.end(p.final); err != nil {
			return err
		}
		p.zend = int(j.z.Len())
		s.hold.release()
		s.hold = nil
		if c.largeFrom > 0 && s.n >= c.largeFrom {
			s.large = true
		}
	}
	if s != nil {
		c.put(s)
	}
	return nil
}

// framer cuts a stream into frames and compresses them in parallel
// into w; see the top of this file.
type framer struct {
	codec *frameCodec
	job   *frameJob // the job being filled
	// digestLeft is what is left of the frame at hand's digested bytes.
	digestLeft int64
	// hold is the frame at hand's, if large.
	hold  *largeHold
	queue chan *frameJob
	// own is the framer's slot, for a job when all of frameSlots are
	// taken: each layer goes on whatever the others do.
	own chan struct{}
	// onInput sees the input of every job, in order.
	onInput func(raw []byte)

	// The writer's.
	w       io.Writer
	written int64
	err     error
	start   int64 // of the frame at hand
	sink    frameSink
	d       digest.Digest
	done    chan struct{}
}

// newFramer starts a stream of frames compressed by c into w; onInput
// (which may be nil) sees its input in order, on the goroutine that
// calls the framer's methods. Its first frame is begun.
func newFramer(c *frameCodec, w io.Writer, onInput func([]byte)) *framer {
	f := &framer{
		codec:   c,
		queue:   make(chan *frameJob, cap(frameSlots())+1),
		own:     make(chan struct{}, 1),
		w:       w,
		onInput: onInput,
		done:    make(chan struct{}),
	}
	f.newJob(false)
	go f.write()
	return f
}

// newJob starts a job whose first part goes on from the last of the job
// at hand when cont.
func (f *framer) newJob(cont bool) {
	j := &frameJob{raw: getFrameInput(), z: newBlockBuffer(), handoff: make(chan *frameState, 1), done: make(chan struct{})}
	if cont {
		j.prev = f.job
	}
	j.parts = append(j.parts, framePart{cont: cont})
	f.job = j
}

// last is the part at hand.
func (f *framer) last() *framePart { return &f.job.parts[len(f.job.parts)-1] }

// added counts n bytes appended to the part at hand against the frame's
// digested bytes.
func (f *framer) added(n int) {
	if f.digestLeft == 0 {
		return
	}
	d := min(int64(n), f.digestLeft)
	p := f.last()
	p.digest += int(d)
	f.digestLeft -= d
	p.digestEnd = f.digestLeft == 0
}

// dispatch hands the job at hand, its last part ending at the end of its
// input (open when the frame goes on in the next job), to a compressing
// goroutine and to the writer.
func (f *framer) dispatch(open bool) {
	j := f.job
	p := f.last()
	p.end, p.open = len(j.raw), open
	if f.onInput != nil {
		f.onInput(j.raw)
	}
	select {
	case frameSlots() <- struct{}{}:
		j.slot = frameSlots()
	default:
		select {
		case frameSlots() <- struct{}{}:
			j.slot = frameSlots()
		case f.own <- struct{}{}:
			j.slot = f.own
		}
	}
	go j.compress(f.codec)
	f.queue <- j
}

// Write appends p to the frame at hand.
func (f *framer) Write(p []byte) (int, error) {
	f.job.raw = append(f.job.raw, p...)
	f.added(len(p))
	if len(f.job.raw) >= frameJobSize+frameJobSlack {
		f.dispatch(true)
		f.newJob(true)
	}
	return len(p), nil
}

// readFrom reads n bytes from r into the frame at hand (the digested
// ones, when a cut asked for them), writing them to h too if not nil.
// It returns how many it read: fewer only with an error, io.EOF or
// io.ErrUnexpectedEOF when r ended.
func (f *framer) readFrom(r io.Reader, n int64, h hash.Hash) (int64, error) {
	var read int64
	for read < n {
		j := f.job
		room := frameJobSize - len(j.raw)
		if room <= 0 {
			f.dispatch(true)
			f.newJob(true)
			continue
		}
		k := int(min(int64(room), n-read))
		start := len(j.raw)
		j.raw = slices.Grow(j.raw, k)[:start+k]
		got, err := io.ReadFull(r, j.raw[start:])
		j.raw = j.raw[:start+got]
		f.added(got)
		if h != nil {
			h.Write(j.raw[start:])
		}
		read += int64(got)
		if err != nil {
			if err == io.EOF && read > 0 {
				err = io.ErrUnexpectedEOF
			}
			return read, err
		}
	}
	return read, nil
}

// cut ends the frame at hand and begins another, whose first digestLen
// bytes are hashed; sink (which may be nil) is told where it is and
// their digest.
func (f *framer) cut(sink frameSink, digestLen int64) {
	if f.digestLeft != 0 {
		panic(fmt.Sprintf("image: a frame cut %d bytes before the end of its digested bytes", f.digestLeft))
	}
	j := f.job
	f.last().end = len(j.raw)
	// A new job when this one is full, when it goes on from the job
	// before (not to hold up what follows), or when the frame's
	// contents do not fit in what is left of it (for them to start a job
	// of their own, not to wait for this one).
	if n := len(j.raw); n >= frameJobSize || j.parts[0].cont || (n >= frameJobSize/2 && int64(n)+digestLen > frameJobSize) {
		f.dispatch(false)
		f.newJob(false)
	} else {
		j.parts = append(j.parts, framePart{start: n})
	}
	p := f.last()
	p.sink, f.digestLeft = sink, digestLen
	p.digestEnd = sink != nil && digestLen == 0
	f.hold = nil
	if c := f.codec; c.largeFrom > 0 && digestLen >= c.largeFrom {
		c.large <- struct{}{}
		f.hold = &largeHold{c: c.large}
		p.hold = f.hold
	}
}

// close ends the last frame and waits for every job to be written; with
// abort (the stream was broken) the last job is not compressed, and
// the error is errFrameAborted. It returns the length of the blob so
// far.
func (f *framer) close(abort bool) (int64, error) {
	f.last().final = true
	f.job.abort = abort
	f.digestLeft = 0
	f.dispatch(false)
	close(f.queue)
	<-f.done
	// A large frame cut short keeps its slot: given back here.
	f.hold.release()
	return f.written, f.err
}

// write writes the jobs in order to w and tells the sinks where their
// frames are.
func (f *framer) write() {
	defer close(f.done)
	for j := range f.queue {
		<-j.done
		if f.err == nil && j.err != nil {
			f.err = j.err
		}
		if f.err == nil {
			for i := range j.parts {
				p := &j.parts[i]
				if !p.cont {
					f.start, f.sink, f.d = f.written+int64(p.zstart), p.sink, ""
				}
				if p.digestEnd {
					f.d = p.d
				}
				if !p.open && f.sink != nil {
					f.sink.framed(f.start, f.written+int64(p.zend), f.d)
				}
			}
			n, err := j.z.WriteTo(f.w)
			f.written += n
			f.err = err
		}
		j.z.Reset()
		<-j.slot
	}
}

// letGoLarge lets the garbage collector have the encoders kept for
// large frames that none is using: their history (2 MiB each) is kept
// while a layer is written, not from one layer to the next.
func (c *frameCodec) letGoLarge() {
	for {
		select {
		case <-c.idleLarge:
		default:
			return
		}
	}
}

// compress writes what write writes to w as one frame, by an encoder of
// c's (a table of contents), and returns its length before compression.
// large says it may be as long as c.largeFrom: it then waits for the
// large slot, as the framers' large frames do.
func (c *frameCodec) compress(w io.Writer, large bool, write func(io.Writer) error) (int64, error) {
	large = large && c.largeFrom > 0
	if large {
		c.large <- struct{}{}
		defer func() { <-c.large }()
	}
	s, err := c.get(large)
	if err != nil {
		return 0, err
	}
	s.enc.begin(w)
	cw := &countw.Writer{W: s.enc}
	if err := write(cw); err != nil {
		return 0, err
	}
	if err := s.enc.end(true); err != nil {
		return 0, err
	}
	if c.largeFrom > 0 && cw.N >= c.largeFrom {
		s.large = true
	}
	c.put(s)
	return cw.N, nil
}
