package export

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"strconv"
	"strings"

	digest "github.com/opencontainers/go-digest"

	"github.com/storepack/storepack/layercache"
)

// Resumable archives: docker archives and oci-archives put their layer
// blobs first, bottom layer first, each starting at a multiple of
// cloneAlign, and keep in the layer cache the state of the archive's
// sha256 after each blob, keyed by everything the archive holds up to
// there (prefixKey). A re-export then appends the longest run of first
// blobs that the cache holds, with a state, without reading or hashing
// them (resumeArchive): copy_file_range from the cached files, which
// btrfs and XFS turn into a clone of their aligned blocks.

// cloneAlign is the alignment, in the archive, of each layer blob's
// bytes: the block size of btrfs and XFS on 4 KiB pages, below which they
// cannot share blocks. Fixed, as the bytes must not depend on where they
// are written.
const cloneAlign = 4096

// tarPad is the number of zero bytes tar puts after size bytes of data.
func tarPad(size int64) int64 { return -size & 511 }

// archiveStart is the key of an archive's first bytes, start, written
// before its blobs, for an archive format named kind.
func archiveStart(kind string, start []byte) layercache.Key {
	sum := sha256.Sum256(start)
	return must(layercache.KeyOf("storepack "+kind+" prefix", "start "+hex.EncodeToString(sum[:])))
}

// prefixKey is the key of an archive's bytes up to the end of a blob: the
// key of the bytes before it, the tar headers before the blob (head), and
// the blob, named by its digest and length (the tar padding after it
// follows from the length).
func prefixKey(before layercache.Key, head []byte, d digest.Digest, size int64) layercache.Key {
	sum := sha256.Sum256(head)
	return must(layercache.KeyOf("after "+string(before), "head "+hex.EncodeToString(sum[:]), "blob "+string(d), "size "+strconv.FormatInt(size, 10)))
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// alignedHead returns the tar headers hdrs, the last one the blob's, as
// written at offset off of an archive (a multiple of 512), preceded when
// needed by a PAX extended header for hdrs[0] holding a "comment" record
// (which readers ignore) of the length that makes the blob's bytes start
// at a multiple of cloneAlign.
func alignedHead(hdrs []*tar.Header, off int64) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range hdrs {
		if err := tw.WriteHeader(h); err != nil {
			return nil, fmt.Errorf("%s: %w", h.Name, err)
		}
	}
	if rem := (off + int64(buf.Len())) % cloneAlign; rem != 0 {
		// Blocks of 512 bytes to insert: a PAX header takes one block
		// and its records at least one more.
		blocks := (cloneAlign - rem) / 512
		if blocks == 1 {
			blocks += cloneAlign / 512
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
	if (off+int64(buf.Len()))%cloneAlign != 0 {
		return nil, fmt.Errorf("%s: the tar headers before it are %d bytes, not aligning it to %d bytes", hdrs[len(hdrs)-1].Name, buf.Len(), cloneAlign)
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

// fileChunk is a blob file to put in an archive after tar headers.
type fileChunk struct {
	hdrs []*tar.Header // the last one is the blob's
	blob string        // the file holding it
	size int64
	d    digest.Digest // its sha256
}

// resumeArchive appends to af the longest run of chunks (from the first)
// after which the cache holds the archive's hash state, starting from the
// key start of af's bytes so far: without reading or hashing them
// (atomicFile.appendUnhashed), then restores the hash state. A state that
// is not one of sha256 after as many bytes is ignored. It returns the
// number of chunks appended and the key of af's bytes then.
func resumeArchive(af *atomicFile, c *layercache.Cache, start layercache.Key, chunks []fileChunk) (int, layercache.Key, error) {
	var (
		off   = af.n
		key   = start
		heads [][]byte
		keys  []layercache.Key
		n     int
		state []byte
	)
	for i, ch := range chunks {
		head, err := alignedHead(ch.hdrs, off)
		if err != nil {
			return 0, start, err
		}
		heads = append(heads, head)
		off += int64(len(head)) + ch.size + tarPad(ch.size)
		key = prefixKey(key, head, ch.d, ch.size)
		keys = append(keys, key)
		if st, ok := c.State(key); ok && checkState(st, off) == nil {
			n, state = i+1, st
		}
	}
	if n == 0 {
		return 0, start, nil
	}
	for i, ch := range chunks[:n] {
		if err := af.appendUnhashed(heads[i], ch.blob, ch.size, int(tarPad(ch.size))); err != nil {
			return 0, start, fmt.Errorf("%s: %w", ch.hdrs[len(ch.hdrs)-1].Name, err)
		}
	}
	if err := af.restoreHash(state); err != nil {
		return 0, start, err
	}
	return n, keys[n-1], nil
}

// writeChunk writes head, the size bytes of the file blob and tar's
// padding after them to w, hashed.
func writeChunk(w io.Writer, head []byte, blob string, size int64) error {
	if _, err := w.Write(head); err != nil {
		return err
	}
	if err := copyBlob(w, blob, size); err != nil {
		return err
	}
	_, err := w.Write(make([]byte, tarPad(size)))
	return err
}

// keepState stores af's hash state under key, when there are a cache and
// an archive file. Like every cache write, it is best effort.
func keepState(af *atomicFile, c *layercache.Cache, key layercache.Key) {
	if af == nil || c == nil {
		return
	}
	if st, err := af.hashState(); err == nil {
		c.PutState(key, st)
	}
}
