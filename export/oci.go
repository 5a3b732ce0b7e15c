package export

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/storepack/storepack/export/attest"
	"github.com/storepack/storepack/export/image"
	"github.com/storepack/storepack/export/tree"
	"github.com/storepack/storepack/format"
	"github.com/storepack/storepack/internal/atomicfile"
	"github.com/storepack/storepack/internal/fanout"
	"github.com/storepack/storepack/internal/layercache"
	"github.com/storepack/storepack/internal/reference"
	"github.com/storepack/storepack/plan"
)

// An OCI image layout (image-spec's image-layout.md) holds:
//
//   - oci-layout: {"imageLayoutVersion":"1.0.0"};
//   - blobs/sha256/<hex>: every layer (compressed as the export says), every
//     config, every image manifest and, for several systems, the image index;
//   - index.json: for one system, the image's manifest (with its platform);
//     for several, one image index whose manifests are the systems' images,
//     each with its platform. Either is annotated with the tag as
//     org.opencontainers.image.ref.name, so that `oci:DIR` (the only image)
//     and `oci:DIR:TAG` both find it.
//
// Layer blobs are written once each, into temporary files in blobs/sha256
// while their compressed digest and their diff id (the uncompressed tar's
// sha256) are computed in the same pass, then renamed to their digest.
// Distinct layers are compressed in parallel (image.Each); every layer's
// bytes depend only on its plan and compression, so the layout is the same
// whatever the parallelism.
//
// An oci-archive is the layout as a tar (writeOCIArchive), its layer blobs
// first and resumable, as a docker archive's.

// ociDef declares the format: an OCI image layout folder, or an oci-archive when its output ends with ".tar".
var ociDef = format.Def{Name: "oci", Kind: format.Image, Compressions: image.Compressions,
	Attrs:  slices.Concat(format.ImageAttrs, format.RunAttrs, format.TreeAttrs, format.DatabaseAttrs),
	Blocks: slices.Concat(format.ContentBlocks, format.LayerBlocks), BinLink: true}

// ociWriter writes oci exports: an image layout folder, or an oci-archive
// when the output ends with ".tar".
type ociWriter struct{}

// Def declares the format.
func (ociWriter) Def() *format.Def { return &ociDef }

func (ociWriter) totals(e *plan.Export) (bytes, items int64) { return image.Totals(e) }

func (ociWriter) tempDirs() []string { return nil }

func (ociWriter) write(j job) (written, error) {
	var (
		f    File
		imgs *image.Set
		err  error
	)
	if image.IsOCIArchive(j.e.Output) {
		final := filepath.Join(j.outDir, filepath.FromSlash(j.e.Output))
		f, err = writeAtomic(j.outDir, j.e.Output, func(w io.Writer) error {
			var err error
			imgs, err = writeOCIArchive(w, final, j)
			return err
		})
	} else {
		f, imgs, err = writeOCIDir(j.e.Output, j)
	}
	if err != nil {
		return written{}, err
	}
	f.Export = j.e.Name
	return written{files: []File{f}, images: imgs}, nil
}

// ociFile is a small file of a layout: a config, a manifest, an index.
type ociFile struct {
	name string // relative to the layout: blobs/sha256/<hex>, index.json
	data []byte
}

// ociMetadata lists the blobs of the image set imgs besides layers
// (configs, manifests, the image index, and what the supply chain ch
// attaches to the set's root: cosign's signatures and attestations,
// referrers), sorted by name, and index.json, which names the root.
func ociMetadata(imgs *image.Set, ch *chain) (blobs []ociFile, index []byte, err error) {
	seen := map[string]bool{}
	add := func(b []byte) digest.Digest {
		d := digest.FromBytes(b)
		name := image.BlobPath(d)
		if !seen[name] {
			seen[name] = true
			blobs = append(blobs, ociFile{name, b})
		}
		return d
	}
	for _, img := range imgs.Images {
		add(img.Config)
		add(img.Manifest)
	}
	kind := attest.ImageKind
	if imgs.Index != nil {
		add(imgs.Index)
		kind = attest.IndexKind
	}
	root := imgs.Root()
	listed, err := image.Listed(root)
	if err != nil {
		return nil, nil, err
	}
	entries := []ocispec.Descriptor{listed}
	att, err := ch.attach(imgs, reference.Repository(root.Annotations[ocispec.AnnotationRefName]))
	if err != nil {
		return nil, nil, err
	}
	if att != nil {
		addArtifact := func(a *attest.Artifact, annotations map[string]string) {
			for _, b := range a.Blobs {
				add(b.Data)
			}
			add(a.Manifest)
			d := a.Descriptor
			d.Annotations = annotations
			entries = append(entries, d)
		}
		if att.signatures != nil {
			entries[0].Annotations = maps.Clone(listed.Annotations)
			entries[0].Annotations[attest.KindAnnotation] = kind
			addArtifact(att.signatures, map[string]string{attest.KindAnnotation: attest.SignatureKind})
			if att.attestations != nil {
				addArtifact(att.attestations, map[string]string{attest.KindAnnotation: attest.AttestationKind})
			}
		}
		for _, r := range att.referrers {
			addArtifact(r, nil)
		}
		// The referrers again, under the fallback tag that names them.
		if len(att.referrers) > 0 {
			ri, err := attest.ReferrersIndex(att.referrers)
			if err != nil {
				return nil, nil, err
			}
			entries = append(entries, ocispec.Descriptor{
				MediaType:   ocispec.MediaTypeImageIndex,
				Digest:      add(ri),
				Size:        int64(len(ri)),
				Annotations: map[string]string{ocispec.AnnotationRefName: attest.FallbackTag(root.Digest)},
			})
		}
	}
	slices.SortFunc(blobs, func(a, b ociFile) int { return strings.Compare(a.name, b.name) })
	index, err = image.LayoutIndex(entries)
	return blobs, index, err
}

// writeOCILayout writes the job's export as an OCI image layout into dir,
// which must not exist or be empty, and returns its images. Every store file is read once
// (per layer holding it). With a layer cache (c not nil), a layer blob the
// cache holds is put in the layout as a reflink or hard link of the cached
// file (layercache.Link), with its digests from its record, without
// reading the store; the others are written into the cache first and
// linked the same way. The items read, or skipped for a cached layer, are
// counted on count (which may be nil).
func writeOCILayout(dir string, j job) (*image.Set, error) {
	e, c, count := j.e, j.cache, j.count
	_, compression, err := image.Check(e)
	if err != nil {
		return nil, err
	}
	blobDir := filepath.Join(dir, "blobs", "sha256")
	if err := os.MkdirAll(blobDir, 0o755); err != nil {
		return nil, err
	}
	done, err := image.Each(image.Layers(e), func(l image.Layer) (image.Blob, error) {
		if hit, k, ok := image.Lookup(c, l, compression, true); ok {
			l.Skipped(count)
			return hit.Blob, linkBlob(hit.Path, blobDir, hit.Blob.Digest.Encoded())
		} else if c != nil {
			if b, p, err := image.CacheBlob(c, l, compression, count); err != nil {
				return b, err
			} else if p != "" {
				image.Remember(c, k, b)
				return b, linkBlob(p, blobDir, b.Digest.Encoded())
			}
		}
		var b image.Blob
		err := writeBlobFile(blobDir, func(w io.Writer) (digest.Digest, error) {
			var err error
			b, err = l.WriteBlob(w, compression, count)
			return b.Digest, err
		})
		return b, err
	})
	if err != nil {
		return nil, err
	}
	imgs, err := image.Images(e, done)
	if err != nil {
		return nil, err
	}
	if err := writeBaseBlobs(blobDir, imgs.Images, e.Insecure, c); err != nil {
		return nil, err
	}
	blobs, index, err := ociMetadata(imgs, j.chain)
	if err != nil {
		return nil, err
	}
	blobs = append(blobs, ociFile{"oci-layout", []byte(image.LayoutVersion)}, ociFile{"index.json", index})
	for _, b := range blobs {
		if err := atomicfile.WriteFile(filepath.Join(dir, filepath.FromSlash(b.name)), b.data, 0o644); err != nil {
			return nil, err
		}
	}
	if err := syncDir(blobDir); err != nil {
		return nil, err
	}
	return imgs, syncDir(dir)
}

// writeBlobFile writes a blob through fill into a temporary file in
// blobDir, synced, then renamed to the hex of the digest fill returns.
func writeBlobFile(blobDir string, fill func(io.Writer) (digest.Digest, error)) error {
	tmp, err := atomicfile.CreateIn(blobDir, ".blob-*", "", 0o644)
	if err != nil {
		return err
	}
	defer tmp.Abort()
	fo := fanout.New(tmp)
	d, err := fill(fo)
	if ferr := fo.Close(); err == nil && ferr != nil {
		err = fmt.Errorf("%s: %w", tmp.Name(), ferr)
	}
	if err != nil {
		return err
	}
	return tmp.CommitAs(filepath.Join(blobDir, d.Encoded()))
}

// writeOCIDir writes the job's export as a layout folder rel inside its
// output folder: built in a temporary folder next to it, then swapped into
// place. A previous output is replaced only when it is an OCI layout (it
// holds oci-layout) or an empty folder; anything else is an error and
// stays untouched. The File returned is the layout's index.json, whose
// digest covers every blob.
func writeOCIDir(rel string, j job) (File, *image.Set, error) {
	final := filepath.Join(j.outDir, filepath.FromSlash(rel))
	if err := checkReplaceable(final); err != nil {
		return File{}, nil, err
	}
	if err := os.MkdirAll(filepath.Dir(final), 0o777); err != nil {
		return File{}, nil, err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(final), atomicfile.TempPattern(final))
	if err != nil {
		return File{}, nil, err
	}
	defer os.RemoveAll(tmp) // the new layout once moved, or the old one
	if err := os.Chmod(tmp, 0o755); err != nil {
		return File{}, nil, err
	}
	imgs, err := writeOCILayout(tmp, j)
	if err != nil {
		return File{}, nil, fmt.Errorf("%s: %w", final, err)
	}
	index, err := os.ReadFile(filepath.Join(tmp, "index.json"))
	if err != nil {
		return File{}, nil, err
	}
	if err := swapDir(tmp, final); err != nil {
		return File{}, nil, err
	}
	return File{Path: filepath.ToSlash(rel) + "/index.json", SHA256: digest.FromBytes(index).Encoded(), Size: int64(len(index))}, imgs, nil
}

// checkReplaceable fails when p exists and is not an OCI layout or an
// empty folder.
func checkReplaceable(p string) error {
	fi, err := os.Lstat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s: exists and is not a folder; not replacing it with an OCI layout", p)
	}
	if _, err := os.Lstat(filepath.Join(p, "oci-layout")); err == nil {
		return nil
	}
	des, err := os.ReadDir(p)
	if err != nil {
		return err
	}
	if len(des) > 0 {
		return fmt.Errorf("%s: a folder that is not an OCI layout (no oci-layout file); not replacing it", p)
	}
	return nil
}

// swapDir moves the folder tmp to final. An existing final is exchanged
// with tmp in one step where the file system allows it (renameat2
// RENAME_EXCHANGE), else moved aside first; either way the old contents
// end up at tmp, which the caller removes.
func swapDir(tmp, final string) error {
	if _, err := os.Lstat(final); errors.Is(err, fs.ErrNotExist) {
		return os.Rename(tmp, final)
	}
	if err := exchange(tmp, final); err == nil {
		return nil
	}
	old := tmp + ".old"
	if err := os.Rename(final, old); err != nil {
		return err
	}
	if err := os.Rename(tmp, final); err != nil {
		os.Rename(old, final)
		return err
	}
	return os.Rename(old, tmp)
}

// syncDir fsyncs a folder so that the names in it are durable.
func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("%s: %w", dir, err)
	}
	return nil
}

// writeOCIArchive writes the job's export as an oci-archive (the layout as
// a tar) to w, and returns its images. The layout is built in a temporary
// folder next to final, the archive's path, under the temporary name that
// Write sweeps after a killed export (atomicfile.TempPattern), each store
// file read once; then copied into the tar: oci-layout, "blobs/",
// "blobs/sha256/", the layer blobs in image order (the first image's from
// the bottom up, then the next images' not written yet), each starting at
// a multiple of 4096 bytes (image.AlignedHead), then the other blobs
// (configs, manifests, the image index) sorted by name, and index.json.
// Entries have the images' mtime, uid and gid 0, files 0644, folders 0755.
// With a layer cache, a re-export appends the unchanged first layer blobs
// without hashing them, as docker archives do.
func writeOCIArchive(w io.Writer, final string, j job) (*image.Set, error) {
	c := j.cache
	tmp, err := os.MkdirTemp(filepath.Dir(final), atomicfile.TempPattern(final))
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	imgs, err := writeOCILayout(tmp, j)
	if err != nil {
		return nil, err
	}
	return imgs, copyOCIArchive(w, tmp, imgs, c)
}

// copyOCIArchive writes the layout folder dir, holding imgs, into w as an
// oci-archive (writeOCIArchive), resuming through the layer cache c.
func copyOCIArchive(w io.Writer, tmp string, imgs *image.Set, c *layercache.Cache) error {
	mtime := imgs.Images[0].Plan.MTime()
	af, _ := w.(image.Resumable)
	var start bytes.Buffer
	tw := tar.NewWriter(&start)
	if err := image.WriteFile(tw, "oci-layout", []byte(image.LayoutVersion), mtime); err != nil {
		return err
	}
	for _, d := range []string{"blobs/", "blobs/sha256/"} {
		if err := tw.WriteHeader(image.Header(d, 0, mtime)); err != nil {
			return err
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if _, err := w.Write(start.Bytes()); err != nil {
		return err
	}
	// The layer blobs, bottom first, resumable (image.Resume).
	blobDir := filepath.Join(tmp, "blobs", "sha256")
	written := map[string]bool{}
	var chunks []image.Chunk
	for _, img := range imgs.Images {
		for _, b := range img.Blobs {
			name := b.Digest.Encoded()
			if written[name] {
				continue
			}
			written[name] = true
			p := filepath.Join(blobDir, name)
			fi, err := os.Stat(p)
			if err != nil {
				return err
			}
			chunks = append(chunks, image.Chunk{Headers: []*tar.Header{image.Header("blobs/sha256/"+name, fi.Size(), mtime)}, Blob: p, Size: fi.Size(), Digest: b.Digest})
		}
	}
	key := image.ArchiveStart("oci archive", start.Bytes())
	off := int64(start.Len())
	first := 0
	if c != nil && af != nil {
		var err error
		if first, key, err = image.Resume(af, c, key, chunks); err != nil {
			return err
		}
		off = af.Len()
	}
	for _, ch := range chunks[first:] {
		head, err := image.AlignedHead(ch.Headers, off)
		if err != nil {
			return err
		}
		if err := image.WriteChunk(w, head, ch.Blob, ch.Size); err != nil {
			return fmt.Errorf("%s: %w", ch.Blob, err)
		}
		off += int64(len(head)) + ch.Size + tree.Padding(ch.Size)
		key = image.PrefixKey(key, head, ch.Digest, ch.Size)
		image.KeepState(af, c, key)
	}
	// Then configs, manifests and the image index, sorted by name.
	des, err := os.ReadDir(blobDir) // sorted
	if err != nil {
		return err
	}
	tw = tar.NewWriter(w)
	for _, de := range des {
		if written[de.Name()] {
			continue
		}
		if err := copyIntoTar(tw, filepath.Join(blobDir, de.Name()), "blobs/sha256/"+de.Name(), mtime); err != nil {
			return err
		}
	}
	index, err := os.ReadFile(filepath.Join(tmp, "index.json"))
	if err != nil {
		return err
	}
	if err := image.WriteFile(tw, "index.json", index, mtime); err != nil {
		return err
	}
	return tw.Close()
}

// copyIntoTar writes the file at p into tw as name.
func copyIntoTar(tw *tar.Writer, p, name string, mtime int64) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if err := tw.WriteHeader(image.Header(name, fi.Size(), mtime)); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if _, err := io.Copy(tw, f); err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	return nil
}

// linkBlob puts the cached blob at p into blobDir as name; an existing
// file of that name (the same blob, from another layer) is kept.
func linkBlob(p, blobDir, name string) error {
	dst := filepath.Join(blobDir, name)
	if _, err := os.Lstat(dst); err == nil {
		return nil
	}
	if err := layercache.Link(p, dst); err != nil {
		return fmt.Errorf("%s: %w", dst, err)
	}
	return nil
}

// describe gives the images and, for several systems, their index, as
// the layout holds them.
func (ociWriter) describe(e *plan.Export, blobs map[string]image.Blob, _ *layercache.Cache) (*image.Set, []byte, error) {
	imgs, err := image.Images(e, blobs)
	if err != nil {
		return nil, nil, err
	}
	return imgs, imgs.Index, nil
}
