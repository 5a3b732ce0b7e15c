// Package rpm writes RPM v4 packages of file trees while streaming their
// files: each regular file is spooled once into a temporary file (its
// SHA-256 computed on the way), then the cpio payload is written in the
// sorted order rpm looks files up in, compressed into a second temporary
// file (its SHA-256 computed on the way), and the package is the lead, the
// signature header, the main header and that payload. Memory holds the
// file list alone, whatever the sizes.
//
// It is our own because google/rpmpack, the well-kept Go library, keeps
// every file's contents and the compressed payload in memory until it
// writes a package (and records sizes in 32 bits): a closure of gigabytes
// would need gigabytes of memory. The format is rpm's (lib/header.c,
// lib/rpmtag.h): headers of index entries sorted by tag with an immutable
// region, SHA-256 file, header and payload digests, a newc cpio payload;
// sizes past 2 GiB go in rpm's 64-bit tags.
package rpm

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"math"
	"os"
	"path"
	"sort"
	"time"

	"github.com/storepack/storepack/compress"
	"github.com/storepack/storepack/format"
)

// Metadata is what a package says of itself.
type Metadata struct {
	Name, Version, Release string
	// Arch is rpm's name of the architecture (x86_64, aarch64, ...).
	Arch string
	// Summary is one line; Description may be several.
	Summary, Description   string
	License, URL, Packager string
	BuildTime              time.Time
	// Compression is the payload's: gzip, zstd or xz.
	Compression format.Compression
}

// Type is a file's type in a package.
type Type int

// The file types.
const (
	Regular Type = iota
	Dir
	Symlink
)

// File is one entry of a package's file list.
type File struct {
	// Path is absolute: /usr/bin/hello.
	Path string
	Type Type
	// Perm is the permission bits.
	Perm  uint32
	MTime time.Time
	// LinkTo is a symlink's target.
	LinkTo string

	size   int64
	offset int64 // in the spool
	digest [sha256.Size]byte
}

// maxFile is the largest regular file: newc cpio records sizes in 8 hex
// digits.
const maxFile = math.MaxUint32

// Writer builds one package. Add its files, then WriteTo, then Close.
type Writer struct {
	m      Metadata
	dir    string
	prefix string
	spool  *os.File
	off    int64
	files  []File
	seen   map[string]bool
}

// NewWriter starts a package whose temporary files go in dir, named
// prefix and a random suffix.
func NewWriter(dir, prefix string, m Metadata) (*Writer, error) {
	switch m.Compression {
	case format.Gzip, format.Zstd, format.XZ:
	default:
		return nil, fmt.Errorf("rpm: payload compression %q (want gzip, zstd or xz)", m.Compression)
	}
	f, err := os.CreateTemp(dir, prefix+"spool-*")
	if err != nil {
		return nil, err
	}
	return &Writer{m: m, dir: dir, prefix: prefix, spool: f, seen: map[string]bool{}}, nil
}

// Close removes the temporary files.
func (w *Writer) Close() error {
	w.spool.Close()
	return os.Remove(w.spool.Name())
}

// Add adds f; a regular file's contents are read from r, size bytes.
func (w *Writer) Add(f File, r io.Reader, size int64) error {
	if !path.IsAbs(f.Path) || path.Clean(f.Path) != f.Path || f.Path == "/" {
		return fmt.Errorf("rpm: %q is not a clean absolute path", f.Path)
	}
	if w.seen[f.Path] {
		return fmt.Errorf("rpm: %s is in the package twice", f.Path)
	}
	w.seen[f.Path] = true
	if f.Type == Regular {
		if size > maxFile {
			return fmt.Errorf("rpm: %s is %d bytes; an rpm's cpio payload holds files under 4 GiB", f.Path, size)
		}
		h := sha256.New()
		n, err := io.Copy(io.MultiWriter(w.spool, h), r)
		if err != nil {
			return fmt.Errorf("rpm: %s: %w", f.Path, err)
		}
		if n != size {
			return fmt.Errorf("rpm: %s: %d bytes, %d expected", f.Path, n, size)
		}
		f.size, f.offset = n, w.off
		h.Sum(f.digest[:0])
		w.off += n
	}
	if f.Type == Symlink {
		f.size = int64(len(f.LinkTo))
	}
	w.files = append(w.files, f)
	return nil
}

// mode is f's st_mode as rpm records it.
func (f *File) mode() uint32 {
	switch f.Type {
	case Dir:
		return 0o040000 | f.Perm&0o7777
	case Symlink:
		return 0o120000 | 0o777
	}
	return 0o100000 | f.Perm&0o7777
}

// WriteTo writes the package to out.
func (w *Writer) WriteTo(out io.Writer) (int64, error) {
	sort.Slice(w.files, func(i, j int) bool { return w.files[i].Path < w.files[j].Path })
	payload, err := os.CreateTemp(w.dir, w.prefix+"payload-*")
	if err != nil {
		return 0, err
	}
	defer os.Remove(payload.Name())
	defer payload.Close()
	ph := sha256.New()
	archiveSize, err := w.writePayload(io.MultiWriter(payload, ph))
	if err != nil {
		return 0, err
	}
	payloadLen, err := payload.Seek(0, io.SeekCurrent)
	if err != nil {
		return 0, err
	}
	hdr := w.header(hex.EncodeToString(ph.Sum(nil)))
	hb, err := hdr.bytes(tagHeaderImmutable)
	if err != nil {
		return 0, err
	}
	sig := &index{}
	sum := sha256.Sum256(hb)
	sig.add(sigSHA256, stringEntry(hex.EncodeToString(sum[:])))
	if total := int64(len(hb)) + payloadLen; total > math.MaxInt32 || archiveSize > math.MaxInt32 {
		sig.add(sigLongSize, int64Entry(total))
		sig.add(sigLongArchiveSize, int64Entry(archiveSize))
	} else {
		sig.add(sigSize, int32Entry(int32(total)))
		sig.add(sigPayloadSize, int32Entry(int32(archiveSize)))
	}
	sb, err := sig.bytes(tagHeaderSignatures)
	if err != nil {
		return 0, err
	}
	var n int64
	for _, b := range [][]byte{w.lead(), sb, make([]byte, (8-len(sb)%8)%8), hb} {
		k, err := out.Write(b)
		n += int64(k)
		if err != nil {
			return n, err
		}
	}
	if _, err := payload.Seek(0, io.SeekStart); err != nil {
		return n, err
	}
	m, err := io.Copy(out, payload)
	return n + m, err
}

// writePayload writes the compressed cpio archive of the files to dst and
// returns the archive's uncompressed length.
func (w *Writer) writePayload(dst io.Writer) (int64, error) {
	cw, err := compress.NewWriter(dst, w.m.Compression, compress.Options{})
	if err != nil {
		return 0, err
	}
	c := &counter{w: cw}
	for i := range w.files {
		f := &w.files[i]
		if err := writeCPIOHeader(c, uint32(i+1), f.mode(), f.MTime, f.size, "."+f.Path); err != nil {
			return 0, err
		}
		switch f.Type {
		case Regular:
			if _, err := io.Copy(c, io.NewSectionReader(w.spool, f.offset, f.size)); err != nil {
				return 0, fmt.Errorf("rpm: %s: %w", f.Path, err)
			}
		case Symlink:
			io.WriteString(c, f.LinkTo)
		}
		if _, err := c.Write(make([]byte, pad4(f.size))); err != nil {
			return 0, err
		}
	}
	if err := writeCPIOHeader(c, 0, 0, time.Unix(0, 0), 0, "TRAILER!!!"); err != nil {
		return 0, err
	}
	if err := cw.Close(); err != nil {
		return 0, err
	}
	return c.n, nil
}

// writeCPIOHeader writes a newc header and name (padded to 4 bytes).
func writeCPIOHeader(w io.Writer, ino, mode uint32, mtime time.Time, size int64, name string) error {
	nlink := 1
	if mode&0o170000 == 0o040000 {
		nlink = 2
	}
	h := fmt.Sprintf("070701%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x",
		ino, mode, 0, 0, nlink, uint32(mtime.Unix()), uint32(size), 0, 0, 0, 0, len(name)+1, 0)
	b := append([]byte(h), name...)
	b = append(b, 0)
	b = append(b, make([]byte, pad4(int64(len(b))))...)
	_, err := w.Write(b)
	return err
}

func pad4(n int64) int64 { return (4 - n%4) % 4 }

// counter counts what is written through it.
type counter struct {
	w io.Writer
	n int64
}

func (c *counter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// lead is rpm's 96-byte lead: magic, version 3.0, binary, the package's
// name, Linux, header-style signatures.
func (w *Writer) lead() []byte {
	b := make([]byte, 96)
	copy(b, []byte{0xed, 0xab, 0xee, 0xdb, 3, 0, 0, 0, 0, 1})
	name := fmt.Sprintf("%s-%s-%s", w.m.Name, w.m.Version, w.m.Release)
	if len(name) > 65 {
		name = name[:65]
	}
	copy(b[10:76], name)
	binary.BigEndian.PutUint16(b[76:], 1) // Linux
	binary.BigEndian.PutUint16(b[78:], 5) // header-style signatures
	return b
}

// header is the package's main header.
func (w *Writer) header(payloadDigest string) *index {
	m := w.m
	h := &index{}
	h.add(tagHeaderI18NTable, stringArrayEntry([]string{"C"}))
	h.add(tagName, stringEntry(m.Name))
	h.add(tagVersion, stringEntry(m.Version))
	h.add(tagRelease, stringEntry(m.Release))
	h.add(tagSummary, stringEntry(m.Summary))
	h.add(tagDescription, stringEntry(m.Description))
	h.add(tagBuildTime, int32Entry(int32(m.BuildTime.Unix())))
	h.add(tagBuildHost, stringEntry("localhost"))
	h.add(tagLicense, stringEntry(m.License))
	if m.Packager != "" {
		h.add(tagPackager, stringEntry(m.Packager))
	}
	if m.URL != "" {
		h.add(tagURL, stringEntry(m.URL))
	}
	h.add(tagOS, stringEntry("linux"))
	h.add(tagArch, stringEntry(m.Arch))
	h.add(tagSourceRPM, stringEntry(fmt.Sprintf("%s-%s-%s.src.rpm", m.Name, m.Version, m.Release)))
	h.add(tagPayloadFormat, stringEntry("cpio"))
	h.add(tagPayloadCompressor, stringEntry(string(m.Compression)))
	h.add(tagPayloadFlags, stringEntry("9"))
	h.add(tagPayloadDigest, stringArrayEntry([]string{payloadDigest}))
	h.add(tagPayloadDigestAlgo, int32Entry(hashSHA256))

	var total int64
	n := len(w.files)
	sizes := make([]int64, n)
	modes := make([]uint16, n)
	rdevs := make([]uint16, n)
	mtimes := make([]int32, n)
	digests := make([]string, n)
	links := make([]string, n)
	flags := make([]int32, n)
	users := make([]string, n)
	groups := make([]string, n)
	verify := make([]int32, n)
	devices := make([]int32, n)
	inodes := make([]int32, n)
	langs := make([]string, n)
	dirIndexes := make([]int32, n)
	baseNames := make([]string, n)
	var dirNames []string
	dirIndex := map[string]int32{}
	for i, f := range w.files {
		if f.Type == Regular {
			total += f.size
		}
		sizes[i] = f.size
		if f.Type == Dir {
			sizes[i] = 4096
		}
		modes[i] = uint16(f.mode())
		mtimes[i] = int32(f.MTime.Unix())
		if f.Type == Regular {
			digests[i] = hex.EncodeToString(f.digest[:])
		}
		links[i] = f.LinkTo
		users[i], groups[i] = "root", "root"
		verify[i] = -1
		devices[i] = 1
		inodes[i] = int32(i + 1)
		dir, base := path.Split(f.Path)
		if _, ok := dirIndex[dir]; !ok {
			dirIndex[dir] = int32(len(dirNames))
			dirNames = append(dirNames, dir)
		}
		dirIndexes[i], baseNames[i] = dirIndex[dir], base
	}
	if total > math.MaxInt32 || slicesMax(sizes) > math.MaxInt32 {
		h.add(tagLongSize, int64Entry(total))
		h.add(tagLongFileSizes, int64ArrayEntry(sizes))
	} else {
		h.add(tagSize, int32Entry(int32(total)))
		small := make([]int32, n)
		for i, s := range sizes {
			small[i] = int32(s)
		}
		h.add(tagFileSizes, int32ArrayEntry(small))
	}
	if n > 0 {
		h.add(tagFileModes, int16ArrayEntry(modes))
		h.add(tagFileRDevs, int16ArrayEntry(rdevs))
		h.add(tagFileMTimes, int32ArrayEntry(mtimes))
		h.add(tagFileDigests, stringArrayEntry(digests))
		h.add(tagFileLinkTos, stringArrayEntry(links))
		h.add(tagFileFlags, int32ArrayEntry(flags))
		h.add(tagFileUserName, stringArrayEntry(users))
		h.add(tagFileGroupName, stringArrayEntry(groups))
		h.add(tagFileVerifyFlags, int32ArrayEntry(verify))
		h.add(tagFileDevices, int32ArrayEntry(devices))
		h.add(tagFileINodes, int32ArrayEntry(inodes))
		h.add(tagFileLangs, stringArrayEntry(langs))
		h.add(tagDirIndexes, int32ArrayEntry(dirIndexes))
		h.add(tagBaseNames, stringArrayEntry(baseNames))
		h.add(tagDirNames, stringArrayEntry(dirNames))
		h.add(tagFileDigestAlgo, int32Entry(hashSHA256))
	}
	return h
}

func slicesMax(s []int64) int64 {
	var m int64
	for _, v := range s {
		m = max(m, v)
	}
	return m
}
