package compress

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"

	"github.com/ulikunitz/xz"
	"github.com/ulikunitz/xz/lzma"
)

// xzMinDict is the smallest dictionary an xz decoder takes.
const xzMinDict = lzma.MinDictCap

// newXZReaderSize reads an xz stream whose decompressed bytes are at most
// size: the dictionary each block header declares (up to 4 GiB, which
// the decoder allocates whole) is lowered to the smallest that holds size
// bytes, which decodes the same bytes, since no match reaches further
// back than the output's start. The block headers are rewritten on the
// way (with their CRC32), found by walking the stream's framing (block
// headers, LZMA2 chunk headers, checks, index, footer); a stream this
// walk does not understand is an error, before the decoder sees it.
// done ends the goroutine that rewrites the stream, when the reader is
// left before its end.
func newXZReaderSize(r io.Reader, size int64) (xr io.Reader, done func(), err error) {
	limit := uint32(xzMinDict)
	for int64(limit) < size && limit < 1<<31 {
		limit <<= 1
	}
	pr, pw := io.Pipe()
	go func() {
		w := bufio.NewWriterSize(pw, 64<<10)
		err := capXZ(bufio.NewReaderSize(r, 64<<10), w, limit)
		if err == nil {
			err = w.Flush()
		}
		pw.CloseWithError(err)
	}()
	zr, err := xz.ReaderConfig{DictCap: xzMinDict}.NewReader(pr)
	if err != nil {
		pr.CloseWithError(err)
		return nil, nil, err
	}
	return &pipeReader{r: zr, pr: pr}, func() { pr.CloseWithError(io.ErrClosedPipe) }, nil
}

// pipeReader closes its pipe when it fails, so that the goroutine
// feeding it ends.
type pipeReader struct {
	r   io.Reader
	pr  *io.PipeReader
	err error // the first error, returned from then on
}

func (p *pipeReader) Read(b []byte) (int, error) {
	if p.err != nil {
		return 0, p.err
	}
	n, err := p.r.Read(b)
	if err != nil {
		p.err = err
		p.pr.CloseWithError(err)
	}
	return n, err
}

var (
	xzMagic       = []byte{0xfd, '7', 'z', 'X', 'Z', 0}
	errXZ         = errors.New("xz: malformed stream")
	xzCheckSizes  = [16]int{0, 4, 4, 4, 8, 8, 8, 16, 16, 16, 32, 32, 32, 64, 64, 64}
	errXZFraming  = fmt.Errorf("%w: bad framing", errXZ)
	xzLZMA2Filter = uint64(0x21)
)

// capXZ copies xz streams from r to w, lowering each LZMA2 dictionary to
// at most limit.
func capXZ(r *bufio.Reader, w io.Writer, limit uint32) error {
	for first := true; ; first = false {
		// Stream padding (zero bytes, by fours) between streams.
		if !first {
			for {
				b, err := r.Peek(4)
				if err == io.EOF && len(b) == 0 {
					return nil
				}
				if err != nil {
					return fmt.Errorf("%w: truncated padding", errXZ)
				}
				if !bytes.Equal(b, []byte{0, 0, 0, 0}) {
					break
				}
				if err := copyN(w, r, 4); err != nil {
					return err
				}
			}
		}
		head, err := readN(r, 12)
		if err != nil {
			return err
		}
		if !bytes.Equal(head[:6], xzMagic) {
			return fmt.Errorf("%w: no stream header", errXZ)
		}
		checkSize := xzCheckSizes[head[7]&0xf]
		if _, err := w.Write(head); err != nil {
			return err
		}
		if err := capBlocks(r, w, limit, checkSize); err != nil {
			return err
		}
		// The footer.
		if err := copyN(w, r, 12); err != nil {
			return err
		}
	}
}

// capBlocks copies a stream's blocks and its index.
func capBlocks(r *bufio.Reader, w io.Writer, limit uint32, checkSize int) error {
	for {
		b0, err := r.ReadByte()
		if err != nil {
			return short(err)
		}
		if b0 == 0 {
			return copyIndex(r, w)
		}
		hdr := make([]byte, (int(b0)+1)*4)
		hdr[0] = b0
		if _, err := io.ReadFull(r, hdr[1:]); err != nil {
			return short(err)
		}
		if err := capHeader(hdr, limit); err != nil {
			return err
		}
		if _, err := w.Write(hdr); err != nil {
			return err
		}
		n, err := copyLZMA2(r, w)
		if err != nil {
			return err
		}
		// Block padding to a multiple of four, then the check.
		pad := (4 - (int64(len(hdr))+n)%4) % 4
		if err := copyN(w, r, int(pad)+checkSize); err != nil {
			return err
		}
	}
}

// capHeader lowers the LZMA2 dictionary of the block header hdr to at
// most limit and recomputes its CRC32.
func capHeader(hdr []byte, limit uint32) error {
	body := hdr[:len(hdr)-4]
	if crc32.ChecksumIEEE(body) != binary.LittleEndian.Uint32(hdr[len(hdr)-4:]) {
		return fmt.Errorf("%w: block header CRC32", errXZ)
	}
	flags := body[1]
	p := bytes.NewReader(body[2:])
	if flags&0x40 != 0 {
		if _, err := binary.ReadUvarint(p); err != nil {
			return errXZFraming
		}
	}
	if flags&0x80 != 0 {
		if _, err := binary.ReadUvarint(p); err != nil {
			return errXZFraming
		}
	}
	for range int(flags&3) + 1 {
		id, err := binary.ReadUvarint(p)
		if err != nil {
			return errXZFraming
		}
		n, err := binary.ReadUvarint(p)
		if err != nil || n > uint64(p.Len()) {
			return errXZFraming
		}
		at := len(body) - p.Len()
		p.Seek(int64(n), io.SeekCurrent)
		if id != xzLZMA2Filter {
			continue
		}
		if n != 1 || body[at] > 40 {
			return errXZFraming
		}
		for body[at] > 0 && xzDictOf(body[at]-1) >= limit {
			body[at]--
		}
	}
	binary.LittleEndian.PutUint32(hdr[len(hdr)-4:], crc32.ChecksumIEEE(body))
	return nil
}

// xzDictOf is the dictionary size an LZMA2 property byte d names.
func xzDictOf(d byte) uint32 {
	if d >= 40 {
		return 0xffffffff
	}
	return (2 | uint32(d&1)) << (d/2 + 11)
}

// copyLZMA2 copies LZMA2 chunks up to and with the end marker, and
// returns how many bytes it copied.
func copyLZMA2(r *bufio.Reader, w io.Writer) (int64, error) {
	var n int64
	for {
		c, err := r.ReadByte()
		if err != nil {
			return n, short(err)
		}
		if _, err := w.Write([]byte{c}); err != nil {
			return n, err
		}
		n++
		var data int
		switch {
		case c == 0:
			return n, nil
		case c == 1 || c == 2:
			h, err := readN(r, 2)
			if err != nil {
				return n, err
			}
			w.Write(h)
			n += 2
			data = int(binary.BigEndian.Uint16(h)) + 1
		case c >= 0x80:
			hl := 4
			if c >= 0xc0 {
				hl = 5
			}
			h, err := readN(r, hl)
			if err != nil {
				return n, err
			}
			w.Write(h)
			n += int64(hl)
			data = int(binary.BigEndian.Uint16(h[2:4])) + 1
		default:
			return n, fmt.Errorf("%w: LZMA2 control byte %#x", errXZ, c)
		}
		if err := copyN(w, r, data); err != nil {
			return n, err
		}
		n += int64(data)
	}
}

// copyIndex copies an index, whose indicator byte was read, with its
// records, padding and CRC32.
func copyIndex(r *bufio.Reader, w io.Writer) error {
	var buf bytes.Buffer
	buf.WriteByte(0)
	tr := io.TeeReader(r, &buf)
	br := byteReader{tr}
	count, err := binary.ReadUvarint(br)
	if err != nil {
		return errXZFraming
	}
	for range count * 2 {
		if _, err := binary.ReadUvarint(br); err != nil {
			return errXZFraming
		}
	}
	if pad := (4 - buf.Len()%4) % 4; pad > 0 {
		if _, err := io.CopyN(&buf, r, int64(pad)); err != nil {
			return errXZFraming
		}
	}
	if _, err := io.CopyN(&buf, r, 4); err != nil {
		return errXZFraming
	}
	_, err = w.Write(buf.Bytes())
	return err
}

// byteReader reads one byte at a time from r (for varints).
type byteReader struct{ r io.Reader }

func (b byteReader) ReadByte() (byte, error) {
	var p [1]byte
	_, err := io.ReadFull(b.r, p[:])
	return p[0], err
}

func readN(r io.Reader, n int) ([]byte, error) {
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, short(err)
	}
	return b, nil
}

func copyN(w io.Writer, r io.Reader, n int) error {
	_, err := io.CopyN(w, r, int64(n))
	return short(err)
}

// short is the error of a read that ended early: the stream is
// truncated at its end, else the reader's own error (a connection lost).
func short(err error) error {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return fmt.Errorf("%w: truncated", errXZ)
	}
	return err
}
