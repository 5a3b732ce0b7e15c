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
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"math"
	"os"
	"path"
	"strings"
	"time"

	"github.com/storepack/storepack/format"
	"github.com/storepack/storepack/internal/compress"
	"github.com/storepack/storepack/internal/countw"
)

// Metadata is what a package says of itself.
type Metadata struct {
	Name, Version, Release string
	// Arch is rpm's name of the architecture (x86_64, aarch64, ...).
	Arch string
	// Summary is one line; Description may be several.
	Summary, Description   string
	License, URL, Packager string
	// Group is the package's group; "Applications/System" when empty (a
	// group from Red Hat's list: rpmlint takes rpmbuild's "Unspecified"
	// for none).
	Group     string
	BuildTime time.Time
	// Compression is the payload's: gzip, zstd or xz.
	Compression format.Compression
	// Pre, Post, PreUn and PostUn are the scriptlets rpm runs before and
	// after installing the package and before and after erasing it
	// (rpmbuild's %pre, %post, %preun, %postun); a zero Script is none.
	Pre, Post, PreUn, PostUn Script
}

// Script is a scriptlet: its body, which rpm writes to a temporary file
// and runs with the interpreter and its arguments before the file's name.
type Script struct {
	// Interpreter is the program and its arguments (/bin/sh when empty).
	Interpreter []string
	Body        string
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
	files  fileList
	buf    []byte // for copying contents
}

// NewWriter starts a package whose temporary files go in dir, named
// prefix and a random suffix.
func NewWriter(dir, prefix string, m Metadata) (*Writer, error) {
	switch m.Compression {
	case format.Gzip, format.Zstd, format.XZ:
	default:
		return nil, fmt.Errorf("rpm: payload compression %q (want gzip, zstd or xz)", m.Compression)
	}
	for _, s := range []Script{m.Pre, m.Post, m.PreUn, m.PostUn} {
		for _, t := range append([]string{s.Body}, s.Interpreter...) {
			if strings.ContainsRune(t, 0) {
				return nil, fmt.Errorf("rpm: a scriptlet holds a NUL byte: %q", t)
			}
		}
	}
	f, err := os.CreateTemp(dir, prefix+"spool-*")
	if err != nil {
		return nil, err
	}
	return &Writer{m: m, dir: dir, prefix: prefix, spool: f, buf: make([]byte, 128<<10)}, nil
}

// Close removes the temporary files.
func (w *Writer) Close() error {
	w.spool.Close()
	return os.Remove(w.spool.Name())
}

// Add adds f; a regular file's contents are read from r, size bytes. A
// path added twice is an error of WriteTo.
func (w *Writer) Add(f File, r io.Reader, size int64) error {
	if !path.IsAbs(f.Path) || path.Clean(f.Path) != f.Path || f.Path == "/" {
		return fmt.Errorf("rpm: %q is not a clean absolute path", f.Path)
	}
	rec := record{typ: f.Type, perm: f.Perm, mtime: f.MTime.Unix()}
	switch f.Type {
	case Regular:
		if size > maxFile {
			return fmt.Errorf("rpm: %s is %d bytes; an rpm's cpio payload holds files under 4 GiB", f.Path, size)
		}
		h := sha256.New()
		n, err := io.CopyBuffer(io.MultiWriter(w.spool, h), io.LimitReader(r, size+1), w.buf)
		if err != nil {
			return fmt.Errorf("rpm: %s: %w", f.Path, err)
		}
		if n != size {
			return fmt.Errorf("rpm: %s: %d bytes, %d expected", f.Path, n, size)
		}
		rec.size, rec.offset = n, w.off
		h.Sum(rec.digest[:0])
		w.off += n
	case Symlink:
		rec.size = int64(len(f.LinkTo))
		rec.link = w.files.names.add(f.LinkTo)
	case Dir:
	default:
		return fmt.Errorf("rpm: %s: unknown file type %d", f.Path, f.Type)
	}
	rec.name = w.files.names.add(f.Path)
	w.files.add(rec)
	return nil
}

// mode is r's st_mode as rpm records it.
func (r *record) mode() uint32 {
	switch r.typ {
	case Dir:
		return 0o040000 | r.perm&0o7777
	case Symlink:
		return 0o120000 | 0o777
	}
	return 0o100000 | r.perm&0o7777
}

// WriteTo writes the package to out.
func (w *Writer) WriteTo(out io.Writer) (int64, error) {
	order, twice := w.files.sorted()
	if twice != nil {
		return 0, fmt.Errorf("rpm: %s is in the package twice", twice)
	}
	payload, err := os.CreateTemp(w.dir, w.prefix+"payload-*")
	if err != nil {
		return 0, err
	}
	defer os.Remove(payload.Name())
	defer payload.Close()
	ph := sha256.New()
	archiveSize, err := w.writePayload(io.MultiWriter(payload, ph), order)
	if err != nil {
		return 0, err
	}
	payloadLen, err := payload.Seek(0, io.SeekCurrent)
	if err != nil {
		return 0, err
	}
	// The main header is written twice, into its digest and then out,
	// rather than kept whole in memory beside its entries.
	hdr := w.header(hex.EncodeToString(ph.Sum(nil)), order)
	hh := sha256.New()
	hlen, err := hdr.writeTo(hh, tagHeaderImmutable)
	if err != nil {
		return 0, err
	}
	sig := &index{}
	sig.add(sigSHA256, stringEntry(hex.EncodeToString(hh.Sum(nil))))
	if total := hlen + payloadLen; total > math.MaxInt32 || archiveSize > math.MaxInt32 {
		sig.add(sigLongSize, int64Entry(total))
		sig.add(sigLongArchiveSize, int64Entry(archiveSize))
	} else {
		sig.add(sigSize, int32Entry(int32(total)))
		sig.add(sigPayloadSize, int32Entry(int32(archiveSize)))
	}
	var sb bytes.Buffer
	sb.Write(w.lead())
	slen, err := sig.writeTo(&sb, tagHeaderSignatures)
	if err != nil {
		return 0, err
	}
	sb.Write(make([]byte, (8-slen%8)%8))
	n, err := sb.WriteTo(out)
	if err != nil {
		return n, err
	}
	k, err := hdr.writeTo(out, tagHeaderImmutable)
	n += k
	if err != nil {
		return n, err
	}
	if _, err := payload.Seek(0, io.SeekStart); err != nil {
		return n, err
	}
	m, err := io.CopyBuffer(out, payload, w.buf)
	return n + m, err
}

// writePayload writes the compressed cpio archive of the files, in order,
// to dst and returns the archive's uncompressed length.
func (w *Writer) writePayload(dst io.Writer, order []int32) (int64, error) {
	cw, err := compress.NewWriter(dst, w.m.Compression, compress.Options{})
	if err != nil {
		return 0, err
	}
	c := &countw.Writer{W: cw}
	var hdr []byte
	for i, k := range order {
		r := w.files.at(int(k))
		hdr = cpioHeader(hdr[:0], uint32(i+1), r.mode(), r.mtime, r.size, w.files.name(r))
		if _, err := c.Write(hdr); err != nil {
			return 0, err
		}
		switch r.typ {
		case Regular:
			if _, err := io.CopyBuffer(c, io.NewSectionReader(w.spool, r.offset, r.size), w.buf); err != nil {
				return 0, fmt.Errorf("rpm: %s: %w", w.files.name(r), err)
			}
		case Symlink:
			if _, err := c.Write(w.files.link(r)); err != nil {
				return 0, err
			}
		}
		if _, err := c.Write(zeros[:pad4(r.size)]); err != nil {
			return 0, err
		}
	}
	if _, err := c.Write(cpioHeader(hdr[:0], 0, 0, 0, 0, nil)); err != nil {
		return 0, err
	}
	if err := cw.Close(); err != nil {
		return 0, err
	}
	return c.N, nil
}

var zeros [4]byte

// cpioHeader appends to b a newc header for the file at path (nil: the
// trailer), with its name ("." and the path) padded to 4 bytes.
func cpioHeader(b []byte, ino, mode uint32, mtime, size int64, path []byte) []byte {
	nlink := 1
	if mode&0o170000 == 0o040000 {
		nlink = 2
	}
	name := "TRAILER!!!"
	if path != nil {
		name = "."
	}
	b = fmt.Appendf(b, "070701%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x",
		ino, mode, 0, 0, nlink, uint32(mtime), uint32(size), 0, 0, 0, 0, len(name)+len(path)+1, 0)
	b = append(append(append(b, name...), path...), 0)
	return append(b, zeros[:pad4(int64(len(b)))]...)
}

func pad4(n int64) int64 { return (4 - n%4) % 4 }

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
func (w *Writer) header(payloadDigest string, order []int32) *index {
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
	group := m.Group
	if group == "" {
		group = "Applications/System"
	}
	h.add(tagGroup, stringEntry(group))
	if m.Packager != "" {
		h.add(tagPackager, stringEntry(m.Packager))
	}
	// One changelog entry, for this version, at the build time (rpmlint
	// requires a changelog; the package has no history of its own).
	who := m.Packager
	if who == "" {
		who = "storepack"
	}
	h.add(tagChangelogTime, int32ArrayEntry([]int32{int32(m.BuildTime.Unix())}))
	h.add(tagChangelogName, stringArrayEntry([]string{fmt.Sprintf("%s - %s-%s", who, m.Version, m.Release)}))
	h.add(tagChangelogText, stringArrayEntry([]string{"- Packed from its store closure by storepack."}))
	if m.URL != "" {
		h.add(tagURL, stringEntry(m.URL))
	}
	// Scriptlets: each body, and its interpreter as a string array, as
	// rpmbuild writes them (rpmtag.h's s[] *PROG tags).
	for _, sc := range []struct {
		s          Script
		tag, progs int32
	}{
		{m.Pre, tagPreIn, tagPreInProg}, {m.Post, tagPostIn, tagPostInProg},
		{m.PreUn, tagPreUn, tagPreUnProg}, {m.PostUn, tagPostUn, tagPostUnProg},
	} {
		if sc.s.Body == "" && sc.s.Interpreter == nil {
			continue
		}
		prog := sc.s.Interpreter
		if len(prog) == 0 {
			prog = []string{"/bin/sh"}
		}
		h.add(sc.tag, stringEntry(sc.s.Body))
		h.add(sc.progs, stringArrayEntry(prog))
	}
	h.add(tagOS, stringEntry("linux"))
	h.add(tagArch, stringEntry(m.Arch))
	h.add(tagSourceRPM, stringEntry(fmt.Sprintf("%s-%s-%s.src.rpm", m.Name, m.Version, m.Release)))
	h.add(tagPayloadFormat, stringEntry("cpio"))
	h.add(tagPayloadCompressor, stringEntry(string(m.Compression)))
	h.add(tagPayloadFlags, stringEntry("9"))
	h.add(tagPayloadDigest, stringArrayEntry([]string{payloadDigest}))
	h.add(tagPayloadDigestAlgo, int32Entry(hashSHA256))

	// The file list's entries, each built in one pass over the files.
	n := int32(len(order))
	// A first pass sizes the entries, so that none is grown by copies.
	var total, largest, linkBytes, baseBytes int64
	for _, k := range order {
		r := w.files.at(int(k))
		if r.typ == Regular {
			total += r.size
		}
		largest = max(largest, r.size)
		linkBytes += int64(r.link.n)
		name := w.files.name(r)
		baseBytes += int64(len(name) - bytes.LastIndexByte(name, '/') - 1)
	}
	long := total > math.MaxInt32 || largest > math.MaxInt32
	sizeBytes := 4
	if long {
		sizeBytes = 8
	}
	grown := func(per int) []byte { return make([]byte, 0, int(n)*per) }
	sizes, modes, rdevs, mtimes := grown(sizeBytes), grown(2), grown(2), grown(4)
	digests, flags, owners, verify := grown(2*sha256.Size+1), grown(4), grown(5), grown(4)
	devices, inodes, langs, dirIndexes := grown(4), grown(4), grown(1), grown(4)
	links := make([]byte, 0, linkBytes+int64(n))
	baseNames := make([]byte, 0, baseBytes+int64(n))
	var dirNames []byte
	dirIndex := map[string]int32{}
	for i, k := range order {
		r := w.files.at(int(k))
		size := r.size
		if r.typ == Dir {
			size = 4096
		}
		if long {
			sizes = binary.BigEndian.AppendUint64(sizes, uint64(size))
		} else {
			sizes = binary.BigEndian.AppendUint32(sizes, uint32(size))
		}
		modes = binary.BigEndian.AppendUint16(modes, uint16(r.mode()))
		rdevs = binary.BigEndian.AppendUint16(rdevs, 0)
		mtimes = binary.BigEndian.AppendUint32(mtimes, uint32(r.mtime))
		if r.typ == Regular {
			digests = hex.AppendEncode(digests, r.digest[:])
		}
		digests = append(digests, 0)
		links = append(append(links, w.files.link(r)...), 0)
		flags = binary.BigEndian.AppendUint32(flags, 0)
		owners = append(owners, "root\x00"...)
		verify = binary.BigEndian.AppendUint32(verify, math.MaxUint32)
		devices = binary.BigEndian.AppendUint32(devices, 1)
		inodes = binary.BigEndian.AppendUint32(inodes, uint32(i+1))
		langs = append(langs, 0)
		name := w.files.name(r)
		cut := bytes.LastIndexByte(name, '/') + 1
		dir, ok := dirIndex[string(name[:cut])]
		if !ok {
			dir = int32(len(dirIndex))
			dirIndex[string(name[:cut])] = dir
			dirNames = append(append(dirNames, name[:cut]...), 0)
		}
		dirIndexes = binary.BigEndian.AppendUint32(dirIndexes, uint32(dir))
		baseNames = append(append(baseNames, name[cut:]...), 0)
	}
	if long {
		h.add(tagLongSize, int64Entry(total))
		h.add(tagLongFileSizes, entry{typeInt64, n, sizes})
	} else {
		h.add(tagSize, int32Entry(int32(total)))
		h.add(tagFileSizes, entry{typeInt32, n, sizes})
	}
	if n > 0 {
		h.add(tagFileModes, entry{typeInt16, n, modes})
		h.add(tagFileRDevs, entry{typeInt16, n, rdevs})
		h.add(tagFileMTimes, entry{typeInt32, n, mtimes})
		h.add(tagFileDigests, entry{typeStringArray, n, digests})
		h.add(tagFileLinkTos, entry{typeStringArray, n, links})
		h.add(tagFileFlags, entry{typeInt32, n, flags})
		h.add(tagFileUserName, entry{typeStringArray, n, owners})
		h.add(tagFileGroupName, entry{typeStringArray, n, owners})
		h.add(tagFileVerifyFlags, entry{typeInt32, n, verify})
		h.add(tagFileDevices, entry{typeInt32, n, devices})
		h.add(tagFileINodes, entry{typeInt32, n, inodes})
		h.add(tagFileLangs, entry{typeStringArray, n, langs})
		h.add(tagDirIndexes, entry{typeInt32, n, dirIndexes})
		h.add(tagBaseNames, entry{typeStringArray, n, baseNames})
		h.add(tagDirNames, entry{typeStringArray, int32(len(dirIndex)), dirNames})
		h.add(tagFileDigestAlgo, int32Entry(hashSHA256))
	}
	return h
}
