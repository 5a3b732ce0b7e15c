// Package layercache keeps what image exports computed about layers, so
// that re-exporting a closure in which few store items changed reads and
// hashes only the changed layers.
//
// Store paths never change their contents (a path's hash part names them),
// so a layer's bytes are fixed by its description: the store items with
// their NAR hashes, the folders and symlinks, the mtime, the compression,
// and the versions of the code that encodes them. The export package hashes
// all of that into a Key; the cache maps a Key to a Record (the layer tar's
// diff id and length, and the digest and length of its blob as compressed)
// and keeps blobs by digest.
//
// On disk, below the cache folder ($XDG_CACHE_HOME/storepack, else
// ~/.cache/storepack):
//
//	layers/v1/<first 2 hex digits>/<key>.json   records
//	blobs/sha256/<hex>                          blobs, read-only (0444)
//	states/v1/<first 2 hex digits>/<key>        hash states (PutState)
//
// The cache can never change what an export writes: a record names its own
// key and is ignored unless it parses and matches; a blob is used only when
// its file has the length its record gives (else it is removed and
// rebuilt), and blobs are written to a temporary file, synced and renamed
// to their digest, so a killed export leaves no blob under a final name.
// Deleting the folder, or any file in it, is always safe.
package layercache

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	digest "github.com/opencontainers/go-digest"

	"github.com/storepack/storepack/internal/atomicfile"
)

// Environment variables the cache reads.
const (
	// EnvNoCache, set to 1 or true, turns the cache off
	// (storepack export --no-cache).
	EnvNoCache = "STOREPACK_NO_CACHE"
)

// Version is the version of the cache's layout and of its records; it is
// part of every key and of the records' folder.
const Version = 1

// DefaultDir is the cache folder: $XDG_CACHE_HOME/storepack, else
// ~/.cache/storepack (os.UserCacheDir's rule on Linux).
func DefaultDir() (string, error) {
	base, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("layer cache: %w", err)
	}
	return filepath.Join(base, "storepack"), nil
}

// Disabled reports whether EnvNoCache turns the cache off.
func Disabled() bool {
	v, _ := strconv.ParseBool(os.Getenv(EnvNoCache))
	return v
}

// Cache is an open cache folder. Its methods are safe for concurrent use,
// by goroutines and by processes sharing the folder.
type Cache struct {
	dir string
}

// Open opens (creating it when missing) the cache folder dir, and removes
// temporary files that exports killed more than a day ago left in it.
func Open(dir string) (*Cache, error) {
	c := &Cache{dir: dir}
	for _, d := range []string{c.recordDir(), c.blobDir()} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("layer cache %s: %w", dir, err)
		}
	}
	if ents, err := os.ReadDir(c.blobDir()); err == nil {
		for _, e := range ents {
			if !strings.HasPrefix(e.Name(), atomicfile.UnnamedPrefix) {
				continue
			}
			if fi, err := e.Info(); err == nil && time.Since(fi.ModTime()) > 24*time.Hour {
				os.Remove(filepath.Join(c.blobDir(), e.Name()))
			}
		}
	}
	return c, nil
}

// Dir is the cache folder.
func (c *Cache) Dir() string { return c.dir }

func (c *Cache) recordDir() string { return filepath.Join(c.dir, "layers", "v"+strconv.Itoa(Version)) }
func (c *Cache) blobDir() string   { return filepath.Join(c.dir, "blobs", "sha256") }

// Key identifies the bytes of one layer blob: the hex sha256 of
// everything they depend on (KeyOf).
type Key string

// KeyOf hashes parts, each on a line of its own after the cache's
// version, into a Key. The caller passes everything the blob's bytes
// depend on; parts must not contain newlines.
func KeyOf(parts ...string) (Key, error) {
	h := sha256.New()
	fmt.Fprintf(h, "storepack layercache %d\n", Version)
	for _, p := range parts {
		if strings.ContainsAny(p, "\n") {
			return "", fmt.Errorf("layer cache key part %q holds a newline", p)
		}
		fmt.Fprintf(h, "%s\n", p)
	}
	return Key(hex.EncodeToString(h.Sum(nil))), nil
}

// Record is what the cache knows about a layer: the uncompressed tar's
// diff id and length, its blob's digest and length (the same when
// uncompressed), and its descriptor's annotations.
type Record struct {
	Key      Key           `json:"key"`
	DiffID   digest.Digest `json:"diff_id"`
	Size     int64         `json:"size"`
	Digest   digest.Digest `json:"digest"`
	BlobSize int64         `json:"blob_size"`
	// Annotations are the blob's manifest descriptor's (the tables of
	// contents of lazily pulled layers), kept so that a cached layer gives
	// the same manifest as a made one.
	Annotations map[string]string `json:"annotations,omitempty"`
}

// valid reports whether r is a complete record for k.
func (r *Record) valid(k Key) bool {
	return r.Key == k && r.DiffID.Validate() == nil && r.Digest.Validate() == nil &&
		r.DiffID.Algorithm() == digest.SHA256 && r.Digest.Algorithm() == digest.SHA256 &&
		r.Size > 0 && r.BlobSize > 0
}

func (c *Cache) recordPath(k Key) string {
	return filepath.Join(c.recordDir(), string(k[:2]), string(k)+".json")
}

// Get returns the record of k. A missing, unreadable, malformed or
// mismatched record is reported as missing (and later overwritten by Put).
func (c *Cache) Get(k Key) (Record, bool) {
	if len(k) != 64 {
		return Record{}, false
	}
	b, err := os.ReadFile(c.recordPath(k))
	if err != nil {
		return Record{}, false
	}
	var r Record
	if err := json.Unmarshal(b, &r); err != nil || !r.valid(k) {
		return Record{}, false
	}
	return r, true
}

// Put stores r under its key, atomically (a temporary file renamed).
func (c *Cache) Put(r Record) error {
	if !r.valid(r.Key) || len(r.Key) != 64 {
		return fmt.Errorf("layer cache: incomplete record %+v", r)
	}
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	p := c.recordPath(r.Key)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return fmt.Errorf("layer cache: %w", err)
	}
	return put(p, b)
}

// put writes b to p atomically. The cache's files are not synced: a crash
// loses at most some of them, which the next export makes again.
func put(p string, b []byte) error {
	if err := atomicfile.WriteFile(p, b, 0o644, atomicfile.NoSync); err != nil {
		return fmt.Errorf("layer cache: %w", err)
	}
	return nil
}

func (c *Cache) statePath(k Key) string {
	return filepath.Join(c.dir, "states", "v"+strconv.Itoa(Version), string(k[:2]), string(k))
}

// maxState bounds the states State reads (sha256's marshaled state is
// 108 bytes).
const maxState = 1024

// State returns the hash state kept under k (PutState). A missing,
// unreadable or oversized file is reported as missing.
func (c *Cache) State(k Key) ([]byte, bool) {
	if len(k) != 64 {
		return nil, false
	}
	b, err := os.ReadFile(c.statePath(k))
	if err != nil || len(b) == 0 || len(b) > maxState {
		return nil, false
	}
	return b, true
}

// PutState keeps state, a marshaled hash state, under k, atomically. The
// caller's key names every byte the state has hashed: docker archives keep
// the state of their sha256 after each layer, keyed by the layers so far,
// so that a re-export starting with the same layers resumes hashing there.
func (c *Cache) PutState(k Key, state []byte) error {
	if len(k) != 64 || len(state) == 0 || len(state) > maxState {
		return fmt.Errorf("layer cache: bad hash state for key %q", k)
	}
	p := c.statePath(k)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return fmt.Errorf("layer cache: %w", err)
	}
	return put(p, state)
}

// BlobPath is where the blob of digest d is kept.
func (c *Cache) BlobPath(d digest.Digest) string {
	return filepath.Join(c.blobDir(), d.Encoded())
}

// Blob returns the path of the blob of digest d when the cache holds it
// as a regular file of size bytes. A blob of another size is corrupt: it
// is removed and reported missing.
func (c *Cache) Blob(d digest.Digest, size int64) (string, bool) {
	if d.Validate() != nil || d.Algorithm() != digest.SHA256 {
		return "", false
	}
	p := c.BlobPath(d)
	fi, err := os.Lstat(p)
	if err != nil {
		return "", false
	}
	if !fi.Mode().IsRegular() || fi.Size() != size {
		os.Remove(p)
		return "", false
	}
	return p, true
}

// BlobWriter is a blob being added to the cache: a temporary file in the
// blob folder.
type BlobWriter struct {
	f *atomicfile.File
	c *Cache
}

// NewBlob starts a blob. Write its bytes, then Commit or Abort.
func (c *Cache) NewBlob() (*BlobWriter, error) {
	f, err := atomicfile.CreateIn(c.blobDir(), atomicfile.UnnamedPattern(""), "", 0o444)
	if err != nil {
		return nil, fmt.Errorf("layer cache: %w", err)
	}
	return &BlobWriter{f: f, c: c}, nil
}

// Write writes the blob's bytes.
func (b *BlobWriter) Write(p []byte) (int, error) { return b.f.Write(p) }

// ReadFrom writes what r reads into the blob.
func (b *BlobWriter) ReadFrom(r io.Reader) (int64, error) { return b.f.ReadFrom(r) }

// Abort removes the temporary file.
func (b *BlobWriter) Abort() { b.f.Abort() }

// Commit syncs the blob, makes it read-only and renames it to its digest
// d, whose hashing the caller did while writing. It returns the blob's
// path.
func (b *BlobWriter) Commit(d digest.Digest) (string, error) {
	if err := d.Validate(); err != nil {
		b.Abort()
		return "", fmt.Errorf("layer cache: blob %s: %w", d, err)
	}
	p := b.c.BlobPath(d)
	if err := b.f.CommitAs(p); err != nil {
		return "", fmt.Errorf("layer cache: blob %s: %w", d, err)
	}
	return p, nil
}

// Link puts the cached blob at src (a path Blob or Commit returned) at
// dst, which must not exist: a reflink (copy-on-write clone) where the
// file system can, else a hard link (the same read-only file), else a
// copy.
func Link(src, dst string) error {
	if err := reflink(src, dst); err == nil {
		return nil
	}
	if err := os.Link(src, dst); err == nil {
		return nil
	}
	return copyFile(src, dst)
}

// copyFile copies src to a new file dst, mode 0444 (io.Copy between files
// uses copy_file_range where it can).
func copyFile(src, dst string) (err error) {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o444)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			os.Remove(dst)
		}
	}()
	if _, err := io.Copy(out, in); err != nil {
		return fmt.Errorf("%s: %w", dst, err)
	}
	return out.Sync()
}

func (c *Cache) diffIDPath(blob digest.Digest) string {
	return filepath.Join(c.dir, "diffids", "v"+strconv.Itoa(Version), blob.Encoded())
}

// DiffID reports whether the base layer blob of digest blob was checked
// to uncompress to the tar of diff id diffID (PutDiffID), so that an
// export that links the blob from the cache need not decompress it again.
func (c *Cache) DiffID(blob, diffID digest.Digest) bool {
	if blob.Validate() != nil || blob.Algorithm() != digest.SHA256 {
		return false
	}
	b, err := os.ReadFile(c.diffIDPath(blob))
	return err == nil && string(b) == diffID.String()
}

// PutDiffID records that the blob of digest blob uncompresses to the tar
// of diff id diffID (both content digests: the record can only be true
// or missing).
func (c *Cache) PutDiffID(blob, diffID digest.Digest) error {
	if blob.Validate() != nil || blob.Algorithm() != digest.SHA256 || diffID.Validate() != nil {
		return fmt.Errorf("layer cache: bad digests %q, %q", blob, diffID)
	}
	p := c.diffIDPath(blob)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return fmt.Errorf("layer cache: %w", err)
	}
	return put(p, []byte(diffID.String()))
}

// repositoriesPath is the file listing the repositories of registry that
// pushes went to.
func (c *Cache) repositoriesPath(registry string) string {
	sum := sha256.Sum256([]byte(registry))
	return filepath.Join(c.dir, "repositories", hex.EncodeToString(sum[:]))
}

// Repositories are the repositories of registry (a host[:port]) that
// pushes recorded with AddRepository, sorted: where a push to another
// repository of that registry may mount the blobs it shares with them.
func (c *Cache) Repositories(registry string) []string {
	b, err := os.ReadFile(c.repositoriesPath(registry))
	if err != nil {
		return nil
	}
	var repos []string
	if json.Unmarshal(b, &repos) != nil {
		return nil
	}
	return repos
}

// AddRepository records that a push went to repo of registry.
func (c *Cache) AddRepository(registry, repo string) error {
	repos := c.Repositories(registry)
	if slices.Contains(repos, repo) {
		return nil
	}
	repos = append(repos, repo)
	slices.Sort(repos)
	b, err := json.Marshal(repos)
	if err != nil {
		return err
	}
	p := c.repositoriesPath(registry)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return fmt.Errorf("layer cache: %w", err)
	}
	return put(p, b)
}
