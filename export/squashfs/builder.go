package squashfs

import (
	"fmt"
	"math"

	"github.com/storepack/storepack/internal/compress"
)

// builder writes the data blocks in the order of the entries and builds
// the tables, on a goroutine of its own. A folder's inode is written after
// its children's (its listing needs their places in the inode table), so
// the open folders wait on a stack.
type builder struct {
	sw  *Writer
	pos int64 // where the next data block goes

	inodes, dirs, fragTable *metaWriter
	stack                   []*openDir
	file                    *openFile
	fragments               uint32
	inodeCount              uint32
	ids                     []uint32
	idIndex                 map[uint32]uint16
	root                    uint64
}

// openDir is a folder whose children are being written.
type openDir struct {
	h        *Header
	number   uint32
	parent   uint32
	children []child
	subdirs  uint32
}

// child is an entry of a folder's listing: where its inode is.
type child struct {
	name   string
	typ    uint16 // the basic type, as listings name it
	block  uint32 // the start of the inode's metadata block in the inode table
	offset uint16 // its offset in that block, uncompressed
	number uint32
}

// openFile is a regular file whose blocks are being written.
type openFile struct {
	h      *Header
	number uint32
	start  int64
	sizes  []uint32
}

func newBuilder(sw *Writer) *builder {
	return &builder{
		sw: sw, pos: superSize,
		inodes: newMetaWriter(sw.block), dirs: newMetaWriter(sw.block), fragTable: newMetaWriter(sw.block),
		idIndex: map[uint32]uint16{},
	}
}

// run builds the image from the events, then writes the tables and the
// superblock, and records the image's length.
func (b *builder) run() error {
	for e := range b.sw.events {
		if err := b.handle(e); err != nil {
			// Drain, so that no producer waits on a full channel: it
			// notices the error on its next send.
			go func() {
				for e := range b.sw.events {
					if e.job != nil {
						<-e.job.done
					}
				}
			}()
			return err
		}
	}
	if len(b.stack) != 0 {
		return fmt.Errorf("squashfs: %d folders left open", len(b.stack))
	}
	return b.finish()
}

func (b *builder) handle(e event) error {
	switch e.kind {
	case evDirBegin:
		d := &openDir{h: e.h, number: e.number}
		if len(b.stack) > 0 {
			d.parent = b.stack[len(b.stack)-1].number
		}
		b.stack = append(b.stack, d)
	case evDirEnd:
		if len(b.stack) == 0 {
			return fmt.Errorf("squashfs: a folder closed twice")
		}
		d := b.stack[len(b.stack)-1]
		b.stack = b.stack[:len(b.stack)-1]
		return b.writeDir(d)
	case evFileBegin:
		b.file = &openFile{h: e.h, number: e.number, start: b.pos}
	case evBlock:
		size, err := b.writeBlock(e.job)
		if err != nil {
			return err
		}
		b.file.sizes = append(b.file.sizes, size)
	case evFileEnd:
		return b.writeFile(e.frag, e.off)
	case evFragment:
		start := b.pos
		size, err := b.writeBlock(e.job)
		if err != nil {
			return err
		}
		var ent [16]byte
		le.PutUint64(ent[0:], uint64(start))
		le.PutUint32(ent[8:], size)
		b.fragments++
		return b.fragTable.write(ent[:])
	case evSymlink:
		return b.writeSymlink(e.h, e.number)
	}
	return nil
}

// writeBlock writes a compressed block at the end of the data and returns
// its size field.
func (b *builder) writeBlock(j *job) (uint32, error) {
	<-j.done
	if j.err != nil {
		return 0, fmt.Errorf("squashfs: compressing: %w", j.err)
	}
	data, size := j.out, uint32(len(j.out))
	if data == nil {
		data, size = j.raw, uint32(len(j.raw))|dataRaw
	}
	if _, err := b.sw.w.WriteAt(data, b.pos); err != nil {
		return 0, err
	}
	b.pos += int64(len(data))
	b.sw.bufPool.Put(j.raw[:0])
	return size, nil
}

// id is the index of uid or gid in the id table.
func (b *builder) id(v uint32) (uint16, error) {
	if i, ok := b.idIndex[v]; ok {
		return i, nil
	}
	if len(b.ids) == math.MaxUint16 {
		return 0, fmt.Errorf("squashfs: more than %d owners", math.MaxUint16)
	}
	i := uint16(len(b.ids))
	b.ids = append(b.ids, v)
	b.idIndex[v] = i
	return i, nil
}

// inodeHeader is the header every inode starts with.
func (b *builder) inodeHeader(typ uint16, h *Header, number uint32) ([]byte, error) {
	uid, err := b.id(h.UID)
	if err != nil {
		return nil, err
	}
	gid, err := b.id(h.GID)
	if err != nil {
		return nil, err
	}
	mtime := h.ModTime.Unix()
	if mtime < 0 || mtime > math.MaxUint32 {
		return nil, fmt.Errorf("squashfs: %s: time %v out of range", h.Name, h.ModTime)
	}
	out := make([]byte, 16, 64)
	le.PutUint16(out[0:], typ)
	le.PutUint16(out[2:], uint16(h.Mode&0o7777))
	le.PutUint16(out[4:], uid)
	le.PutUint16(out[6:], gid)
	le.PutUint32(out[8:], uint32(mtime))
	le.PutUint32(out[12:], number)
	return out, nil
}

// addInode writes an inode into the inode table and lists it in its
// folder.
func (b *builder) addInode(inode []byte, name string, typ uint16, number uint32) error {
	block, offset := b.inodes.pos()
	if block > math.MaxUint32 {
		return fmt.Errorf("squashfs: the inode table is larger than 4 GiB")
	}
	b.inodeCount++
	if err := b.inodes.write(inode); err != nil {
		return err
	}
	if len(b.stack) == 0 { // the root
		b.root = block<<16 | uint64(offset)
		return nil
	}
	d := b.stack[len(b.stack)-1]
	d.children = append(d.children, child{name: name, typ: typ, block: uint32(block), offset: offset, number: number})
	if typ == typeDir {
		d.subdirs++
	}
	return nil
}

// writeFile writes the inode of the current file, whose tail is in
// fragment frag at off (frag noFragment: none).
func (b *builder) writeFile(frag, off uint32) error {
	f := b.file
	b.file = nil
	start, size := uint64(f.start), uint64(f.h.Size)
	var inode []byte
	var err error
	if start < basicFileLimit && size < basicFileLimit {
		if inode, err = b.inodeHeader(typeFile, f.h, f.number); err != nil {
			return err
		}
		inode = le.AppendUint32(inode, uint32(start))
		inode = le.AppendUint32(inode, frag)
		inode = le.AppendUint32(inode, off)
		inode = le.AppendUint32(inode, uint32(size))
	} else {
		if inode, err = b.inodeHeader(typeExtFile, f.h, f.number); err != nil {
			return err
		}
		inode = le.AppendUint64(inode, start)
		inode = le.AppendUint64(inode, size)
		inode = le.AppendUint64(inode, 0) // sparse bytes
		inode = le.AppendUint32(inode, 1) // links
		inode = le.AppendUint32(inode, frag)
		inode = le.AppendUint32(inode, off)
		inode = le.AppendUint32(inode, noFragment) // no xattrs
	}
	for _, s := range f.sizes {
		inode = le.AppendUint32(inode, s)
	}
	return b.addInode(inode, f.h.Name, typeFile, f.number)
}

// writeSymlink writes a symlink's inode.
func (b *builder) writeSymlink(h *Header, number uint32) error {
	inode, err := b.inodeHeader(typeSymlink, h, number)
	if err != nil {
		return err
	}
	inode = le.AppendUint32(inode, 1)
	inode = le.AppendUint32(inode, uint32(len(h.Linkname)))
	inode = append(inode, h.Linkname...)
	return b.addInode(inode, h.Name, typeSymlink, number)
}

// writeDir writes a folder's listing into the directory table and its
// inode into the inode table.
func (b *builder) writeDir(d *openDir) error {
	var listing []byte
	for i := 0; i < len(d.children); {
		// One header for a run of at most 256 entries whose inodes share
		// a metadata block and whose numbers are near the first's.
		first := d.children[i]
		j := i + 1
		for j < len(d.children) && j-i < maxDirEntries && d.children[j].block == first.block &&
			int64(d.children[j].number)-int64(first.number) >= math.MinInt16 &&
			int64(d.children[j].number)-int64(first.number) <= math.MaxInt16 {
			j++
		}
		listing = le.AppendUint32(listing, uint32(j-i-1))
		listing = le.AppendUint32(listing, first.block)
		listing = le.AppendUint32(listing, first.number)
		for _, c := range d.children[i:j] {
			listing = le.AppendUint16(listing, c.offset)
			listing = le.AppendUint16(listing, uint16(int16(int64(c.number)-int64(first.number))))
			listing = le.AppendUint16(listing, c.typ)
			listing = le.AppendUint16(listing, uint16(len(c.name)-1))
			listing = append(listing, c.name...)
		}
		i = j
	}
	block, offset := b.dirs.pos()
	if err := b.dirs.write(listing); err != nil {
		return err
	}
	parent := d.parent
	if len(b.stack) == 0 {
		// The root's parent is one past the last inode, as mksquashfs
		// writes it.
		parent = b.sw.number + 1
	}
	size := uint64(len(listing)) + 3 // "." and ".." are implicit
	links := 2 + d.subdirs
	var inode []byte
	var err error
	if size <= basicDirMax && block <= math.MaxUint32 {
		if inode, err = b.inodeHeader(typeDir, d.h, d.number); err != nil {
			return err
		}
		inode = le.AppendUint32(inode, uint32(block))
		inode = le.AppendUint32(inode, links)
		inode = le.AppendUint16(inode, uint16(size))
		inode = le.AppendUint16(inode, offset)
		inode = le.AppendUint32(inode, parent)
	} else {
		if size > math.MaxUint32 || block > math.MaxUint32 {
			return fmt.Errorf("squashfs: %s: a listing too large", d.h.Name)
		}
		if inode, err = b.inodeHeader(typeExtDir, d.h, d.number); err != nil {
			return err
		}
		inode = le.AppendUint32(inode, links)
		inode = le.AppendUint32(inode, uint32(size))
		inode = le.AppendUint32(inode, uint32(block))
		inode = le.AppendUint32(inode, parent)
		inode = le.AppendUint16(inode, 0) // no index
		inode = le.AppendUint16(inode, offset)
		inode = le.AppendUint32(inode, noFragment) // no xattrs
	}
	return b.addInode(inode, d.h.Name, typeDir, d.number)
}

// finish writes the tables after the data, in the order the kernel checks
// them (inodes, directories, fragments, ids, each table before its
// index), then the superblock, and pads the image to a multiple of 4 KiB.
func (b *builder) finish() error {
	if b.inodeCount != b.sw.number {
		return fmt.Errorf("squashfs: %d inodes written of %d", b.inodeCount, b.sw.number)
	}
	ids := newMetaWriter(b.sw.block)
	for _, id := range b.ids {
		if err := ids.write(le.AppendUint32(nil, id)); err != nil {
			return err
		}
	}
	// Each table, then (for fragments and ids) its index: the position
	// of each of its blocks in the image.
	table := func(m *metaWriter, indexed bool) (start, index int64, err error) {
		if err := m.finish(); err != nil {
			return 0, 0, err
		}
		start = b.pos
		if err := b.put(m.out); err != nil {
			return 0, 0, err
		}
		index = b.pos
		if indexed {
			var idx []byte
			for _, s := range m.starts {
				idx = le.AppendUint64(idx, uint64(start)+s)
			}
			err = b.put(idx)
		}
		return start, index, err
	}
	inodeStart, _, err := table(b.inodes, false)
	if err != nil {
		return err
	}
	dirStart, _, err := table(b.dirs, false)
	if err != nil {
		return err
	}
	_, fragIndex, err := table(b.fragTable, true)
	if err != nil {
		return err
	}
	_, idIndex, err := table(ids, true)
	if err != nil {
		return err
	}
	used := b.pos
	if pad := -used & (padTo - 1); pad > 0 {
		if err := b.put(make([]byte, pad)); err != nil {
			return err
		}
	}
	sb := make([]byte, 0, superSize)
	sb = le.AppendUint32(sb, magic)
	sb = le.AppendUint32(sb, b.inodeCount)
	sb = le.AppendUint32(sb, uint32(b.sw.opts.ModTime.Unix()))
	sb = le.AppendUint32(sb, uint32(b.sw.opts.BlockSize))
	sb = le.AppendUint32(sb, b.fragments)
	sb = le.AppendUint16(sb, compressionIDs[b.sw.opts.Compression])
	sb = le.AppendUint16(sb, uint16(log2(b.sw.opts.BlockSize)))
	sb = le.AppendUint16(sb, flagNoXattrs)
	sb = le.AppendUint16(sb, uint16(len(b.ids)))
	sb = le.AppendUint16(sb, 4) // version 4.0
	sb = le.AppendUint16(sb, 0)
	sb = le.AppendUint64(sb, b.root)
	sb = le.AppendUint64(sb, uint64(used))
	sb = le.AppendUint64(sb, uint64(idIndex))
	sb = le.AppendUint64(sb, noTable) // xattrs
	sb = le.AppendUint64(sb, uint64(inodeStart))
	sb = le.AppendUint64(sb, uint64(dirStart))
	sb = le.AppendUint64(sb, uint64(fragIndex))
	sb = le.AppendUint64(sb, noTable) // export table
	if _, err := b.sw.w.WriteAt(sb, 0); err != nil {
		return err
	}
	b.sw.size = b.pos
	return nil
}

// put writes p at the end of the image.
func (b *builder) put(p []byte) error {
	if _, err := b.sw.w.WriteAt(p, b.pos); err != nil {
		return err
	}
	b.pos += int64(len(p))
	return nil
}

func log2(n int) int {
	k := 0
	for n > 1 {
		n >>= 1
		k++
	}
	return k
}

// metaWriter fills a table of metadata blocks: 8 KiB of the table each,
// compressed (or not, when that is not smaller), after a 2-byte header
// with the stored length. The table is kept in memory: inodes and
// listings take tens of bytes an entry.
type metaWriter struct {
	block   *compress.Block
	pending []byte
	out     []byte
	starts  []uint64 // where each block starts in out
}

func newMetaWriter(block *compress.Block) *metaWriter { return &metaWriter{block: block} }

// pos is where the next byte written goes: the start of its block in the
// table, and its offset in the block's uncompressed bytes.
func (m *metaWriter) pos() (uint64, uint16) { return uint64(len(m.out)), uint16(len(m.pending)) }

func (m *metaWriter) write(p []byte) error {
	m.pending = append(m.pending, p...)
	for len(m.pending) >= metadataSize {
		if err := m.flush(metadataSize); err != nil {
			return err
		}
	}
	return nil
}

// flush stores the first n pending bytes as a block.
func (m *metaWriter) flush(n int) error {
	raw := m.pending[:n]
	c, err := m.block.Compress(nil, raw)
	if err != nil {
		return fmt.Errorf("squashfs: compressing metadata: %w", err)
	}
	m.starts = append(m.starts, uint64(len(m.out)))
	if len(c) < n {
		m.out = le.AppendUint16(m.out, uint16(len(c)))
		m.out = append(m.out, c...)
	} else {
		m.out = le.AppendUint16(m.out, uint16(n)|metaRaw)
		m.out = append(m.out, raw...)
	}
	m.pending = append(m.pending[:0], m.pending[n:]...)
	return nil
}

// finish stores the last, partial block.
func (m *metaWriter) finish() error {
	if len(m.pending) == 0 {
		return nil
	}
	return m.flush(len(m.pending))
}
