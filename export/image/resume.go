package image

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	digest "github.com/opencontainers/go-digest"

	"github.com/storepack/storepack/export/tree"
	"github.com/storepack/storepack/internal/layercache"
)

// Resumable archives: docker archives and oci-archives put their layer
// blobs first, bottom layer first, each starting at a multiple of
// CloneAlign, and keep in the layer cache the state of the archive's
// sha256 after each blob, keyed by everything the archive holds up to
// there (PrefixKey). A re-export then appends the longest run of first
// blobs that the cache holds, with a state, without reading or hashing
// them (Resume): copy_file_range from the cached files, which btrfs and
// XFS turn into a clone of their aligned blocks.

// CloneAlign is the alignment, in an archive, of each layer blob's bytes:
// the block size of btrfs and XFS on 4 KiB pages, below which they cannot
// share blocks. Fixed, as the bytes must not depend on where they are
// written.
const CloneAlign = 4096

// Resumable is an archive file being written whose sha256 can skip bytes
// appended from the cache and be set to the state an earlier export kept
// for the same bytes (export's output files are).
type Resumable interface {
	io.Writer
	// Len is the number of bytes in the file, written and appended.
	Len() int64
	// AppendUnhashed appends head, the first size bytes of the file at
	// blob and pad zero bytes, without hashing them; RestoreHash must
	// follow before anything else is written.
	AppendUnhashed(head []byte, blob string, size int64, pad int) error
	// HashState is the state of the hash after every byte so far.
	HashState() ([]byte, error)
	// RestoreHash sets the hash to state, which must cover exactly the
	// bytes in the file.
	RestoreHash(state []byte) error
}

// ArchiveStart is the key of an archive's first bytes, start, written
// before its blobs, for an archive format named kind.
func ArchiveStart(kind string, start []byte) layercache.Key {
	sum := sha256.Sum256(start)
	return mustKey(layercache.KeyOf("storepack "+kind+" prefix", "start "+hex.EncodeToString(sum[:])))
}

// PrefixKey is the key of an archive's bytes up to the end of a blob: the
// key of the bytes before it, the tar headers before the blob (head), and
// the blob, named by its digest and length (the tar padding after it
// follows from the length).
func PrefixKey(before layercache.Key, head []byte, d digest.Digest, size int64) layercache.Key {
	sum := sha256.Sum256(head)
	return mustKey(layercache.KeyOf("after "+string(before), "head "+hex.EncodeToString(sum[:]), "blob "+string(d), "size "+strconv.FormatInt(size, 10)))
}

// mustKey panics on an error of layercache.KeyOf, which only refuses
// parts holding newlines: these are made of hex digits and digests.
func mustKey(k layercache.Key, err error) layercache.Key {
	if err != nil {
		panic(err)
	}
	return k
}

// AlignedHead returns the tar headers hdrs, the last one the blob's, as
// written at offset off of an archive (a multiple of 512), preceded when
// needed by a PAX extended header for hdrs[0] holding a "comment" record
// (which readers ignore) of the length that makes the blob's bytes start
// at a multiple of CloneAlign.
func AlignedHead(hdrs []*tar.Header, off int64) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range hdrs {
		if err := tw.WriteHeader(h); err != nil {
			return nil, fmt.Errorf("%s: %w", h.Name, err)
		}
	}
	if rem := (off + int64(buf.Len())) % CloneAlign; rem != 0 {
		// Blocks of 512 bytes to insert: a PAX header takes one block
		// and its records at least one more.
		blocks := (CloneAlign - rem) / 512
		if blocks == 1 {
			blocks += CloneAlign / 512
		}
		first := *hdrs[0]
		first.PAXRecords = map[string]string{"comment": paxPadding(int(blocks-1) * 512)}
		buf.Reset()
		tw = tar.NewWriter(&buf)
		for _, h := range append([]*tar.Header{&first}, hdrs[1:]...) {
			if err := tw.WriteHeader(h); err != nil {
				return nil, fmt.Errorf("%s: %w", h.Name, err)
			}
		}
	}
	if (off+int64(buf.Len()))%CloneAlign != 0 {
		return nil, fmt.Errorf("%s: the tar headers before it are %d bytes, not aligning it to %d bytes", hdrs[len(hdrs)-1].Name, buf.Len(), CloneAlign)
	}
	return buf.Bytes(), nil
}

// paxPadding is the value of a PAX "comment" record of exactly n bytes
// (n >= 512): "<n> comment=<value>\n".
func paxPadding(n int) string {
	const text = "storepack: padding, so that the blob's bytes start on a 4096-byte boundary"
	v := n - len(strconv.Itoa(n)) - len(" comment=\n")
	return text + strings.Repeat(" ", v-len(text))
}

// Chunk is a blob file to put in an archive after tar headers.
type Chunk struct {
	Headers []*tar.Header // the last one is the blob's
	Blob    string        // the file holding it
	Size    int64
	Digest  digest.Digest // its sha256
}

// Resume appends to af the longest run of chunks (from the first) after
// which the cache holds the archive's hash state, starting from the key
// start of af's bytes so far: without reading or hashing them
// (AppendUnhashed), then restores the hash state. A state that is not one
// of sha256 after as many bytes is ignored. It returns the number of
// chunks appended and the key of af's bytes then.
func Resume(af Resumable, c *layercache.Cache, start layercache.Key, chunks []Chunk) (int, layercache.Key, error) {
	var (
		off   = af.Len()
		key   = start
		heads [][]byte
		keys  []layercache.Key
		n     int
		state []byte
	)
	for i, ch := range chunks {
		head, err := AlignedHead(ch.Headers, off)
		if err != nil {
			return 0, start, err
		}
		heads = append(heads, head)
		off += int64(len(head)) + ch.Size + tree.Padding(ch.Size)
		key = PrefixKey(key, head, ch.Digest, ch.Size)
		keys = append(keys, key)
		if st, ok := c.State(key); ok && CheckState(st, off) == nil {
			n, state = i+1, st
		}
	}
	if n == 0 {
		return 0, start, nil
	}
	for i, ch := range chunks[:n] {
		if err := af.AppendUnhashed(heads[i], ch.Blob, ch.Size, int(tree.Padding(ch.Size))); err != nil {
			return 0, start, fmt.Errorf("%s: %w", ch.Headers[len(ch.Headers)-1].Name, err)
		}
	}
	if err := af.RestoreHash(state); err != nil {
		return 0, start, err
	}
	return n, keys[n-1], nil
}

// CheckState reports whether state is a marshaled sha256 state after n
// bytes (what Resumable.HashState gives).
func CheckState(state []byte, n int64) error {
	if err := sha256.New().(encoding.BinaryUnmarshaler).UnmarshalBinary(state); err != nil {
		return fmt.Errorf("cached hash state: %w", err)
	}
	// The marshaled state ends with the length hashed, big-endian.
	if got := binary.BigEndian.Uint64(state[len(state)-8:]); got != uint64(n) {
		return fmt.Errorf("cached hash state after %d bytes, not %d", got, n)
	}
	return nil
}

// WriteChunk writes head, the size bytes of the file blob and tar's
// padding after them to w.
func WriteChunk(w io.Writer, head []byte, blob string, size int64) error {
	if _, err := w.Write(head); err != nil {
		return err
	}
	if err := copyBlob(w, blob, size); err != nil {
		return err
	}
	_, err := w.Write(make([]byte, tree.Padding(size)))
	return err
}

// KeepState stores af's hash state under key, when there are a cache and
// a resumable file. Like every cache write, it is best effort.
func KeepState(af Resumable, c *layercache.Cache, key layercache.Key) {
	if af == nil || c == nil {
		return
	}
	if st, err := af.HashState(); err == nil {
		c.PutState(key, st)
	}
}

// Header is a header of an archive of images (the outer tar of a docker
// archive or an oci-archive): a folder when name ends with "/", else a
// file of size bytes; mtime as the images', uid and gid 0, files 0644,
// folders 0755.
func Header(name string, size int64, mtime int64) *tar.Header {
	hdr := &tar.Header{Format: tar.FormatPAX, Name: name, ModTime: time.Unix(mtime, 0), Typeflag: tar.TypeReg, Mode: 0o644, Size: size}
	if name[len(name)-1] == '/' {
		hdr.Typeflag, hdr.Mode, hdr.Size = tar.TypeDir, 0o755, 0
	}
	return hdr
}

// WriteFile writes one small file to an archive of images.
func WriteFile(tw *tar.Writer, name string, b []byte, mtime int64) error {
	if err := tw.WriteHeader(Header(name, int64(len(b)), mtime)); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if _, err := tw.Write(b); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}
