package export

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"runtime"
	"slices"
	"sync"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/stream"
	"github.com/google/go-containerregistry/pkg/v1/types"
	digest "github.com/opencontainers/go-digest"
	"golang.org/x/sync/errgroup"

	"github.com/storepack/storepack/export/attest"
	"github.com/storepack/storepack/export/image"
	"github.com/storepack/storepack/format"
	"github.com/storepack/storepack/internal/layercache"
	"github.com/storepack/storepack/plan"
)

// Pushing sends an export's images to a registry straight from the plan,
// with no tarball or layout written first: the same manifests, configs and
// layer blobs (compressed as the export says) as writeOCILayout writes, so
// the registry ends up with the digests the layout has.
//
// Into a repository that holds no tag yet, a push uploads each layer
// while it is made, in one pass: the blob is streamed to the registry as
// it is compressed, committed under the digest computed on the way, and
// its digests recorded in the layer cache (streamLayers). Elsewhere the registry may
// hold some blobs already, which only their digests tell: those are
// computed first (from the layer cache, or by streaming every layer into
// the hashes and the cache), and only the blobs the registry lacks are
// uploaded. When the registry already holds the tagged manifest, nothing
// is uploaded.

// PushReport says what a push did.
type PushReport struct {
	// Ref is the reference pushed to (the export's push).
	Ref string `json:"ref"`
	// Digest is the pushed manifest's (one system) or image index's
	// (several systems) digest.
	Digest digest.Digest `json:"digest"`
	// Uploaded are the layer blobs sent to the registry, and Skipped
	// those it already had, each sorted.
	Uploaded []digest.Digest `json:"uploaded"`
	Skipped  []digest.Digest `json:"skipped"`
	// Mounted are the layer blobs mounted from another repository of the
	// registry (mount_from, or one the layer cache recorded a push to)
	// instead of uploaded, sorted; Skipped leaves them out.
	Mounted []digest.Digest `json:"mounted,omitempty"`
}

// PushOptions adjust a push; the zero value is the usual setting.
type PushOptions struct {
	// Keychain finds credentials for the registry; nil means
	// authn.DefaultKeychain (the Docker and Podman configuration files and
	// credential helpers).
	Keychain authn.Keychain
	// Jobs is the number of blobs uploaded at once (default 8, or
	// GOMAXPROCS when it is more: uploads wait on the network and the
	// registry, not the CPU; 8 halves a 100-layer push to a loopback
	// registry against 2).
	Jobs int
	// Plan is the plan the export belongs to, which its provenance
	// records (spec files, variables); nil records none.
	Plan *plan.Plan
	// Cache, when not nil, is the layer cache: layers it holds are sent
	// from their cached blobs. Into a new repository the others are sent
	// as they are made and only their digests are recorded; elsewhere
	// the digests it records spare computing them, and a layer it does
	// not know is written into it once, while its digests are computed,
	// and sent from there, so that the store is read once per layer.
	Cache *layercache.Cache
}

// pushAttachments pushes what the supply chain ch attaches to the pushed
// image set imgs (its root: the image or index) in ref's repository: with
// a key, cosign's signature image (tag sha256-<hex>.sig; in a multi-system
// push also one per manifest) and attestation image (.att); the SBOMs and
// provenance as OCI 1.1 referrers, through the registry's referrers API
// or, where it has none, the fallback tag sha256-<hex>.
func pushAttachments(ch *chain, imgs *image.Set, ref name.Reference, opts []remote.Option) error {
	repo := ref.Context()
	att, err := ch.attach(imgs, repo.Name())
	if err != nil || att == nil {
		return err
	}
	root := imgs.Root().Digest
	opts = append(opts, remote.WithReferrersTagFallback(true))
	put := func(a *attest.Artifact, at name.Reference) error {
		for _, b := range a.Blobs {
			if err := remote.WriteLayer(repo, static.NewLayer(b.Data, types.MediaType("application/octet-stream")), opts...); err != nil {
				return err
			}
		}
		return remote.Put(at, rawManifest{a.Manifest, types.MediaType(a.Descriptor.MediaType)}, opts...)
	}
	if att.signatures != nil {
		if err := put(att.signatures, repo.Tag(attest.SignatureTag(root))); err != nil {
			return fmt.Errorf("signature: %w", err)
		}
		if imgs.Index != nil {
			for _, img := range imgs.Images {
				s, err := attest.Sign(attest.Signed{Repository: repo.Name(), Digest: img.ManifestDigest}, ch.key)
				if err != nil {
					return err
				}
				sig, err := attest.SignatureImage(s)
				if err != nil {
					return err
				}
				if err := put(sig, repo.Tag(attest.SignatureTag(img.ManifestDigest))); err != nil {
					return fmt.Errorf("signature: %w", err)
				}
			}
		}
	}
	if att.attestations != nil {
		if err := put(att.attestations, repo.Tag(attest.AttestationTag(root))); err != nil {
			return fmt.Errorf("attestations: %w", err)
		}
	}
	for _, r := range att.referrers {
		if err := put(r, repo.Digest(r.Descriptor.Digest.String())); err != nil {
			return fmt.Errorf("referrer %s: %w", r.Descriptor.ArtifactType, err)
		}
	}
	return nil
}

// rawManifest is a manifest to put as it is.
type rawManifest struct {
	raw       []byte
	mediaType types.MediaType
}

func (m rawManifest) RawManifest() ([]byte, error)        { return m.raw, nil }
func (m rawManifest) MediaType() (types.MediaType, error) { return m.mediaType, nil }

// Push uploads e's image (one system) or image index (several) to e.Push,
// tagged as it says, over plain http when e.Insecure. Blobs the registry
// already has are not sent.
func Push(ctx context.Context, e *plan.Export, o PushOptions) (*PushReport, error) {
	if e.Push == "" {
		return nil, fmt.Errorf("export %q has no push reference", e.Name)
	}
	if len(e.Systems) == 0 {
		return nil, fmt.Errorf("export %q has no system", e.Name)
	}
	var nameOpts []name.Option
	if e.Insecure {
		nameOpts = append(nameOpts, name.Insecure)
	}
	ref, err := name.ParseReference(e.Push, nameOpts...)
	if err != nil {
		return nil, fmt.Errorf("export %q: push = %q: %w", e.Name, e.Push, err)
	}
	_, compression, err := image.Check(e)
	if err != nil {
		return nil, err
	}
	pl := o.Plan
	if pl == nil {
		pl = &plan.Plan{}
	}
	ch, err := newChain(pl, e)
	if err != nil {
		return nil, fmt.Errorf("export %q: %w", e.Name, err)
	}
	keychain := o.Keychain
	if keychain == nil {
		keychain = authn.DefaultKeychain
	}
	jobs := o.Jobs
	if jobs <= 0 {
		jobs = max(8, runtime.GOMAXPROCS(0))
	}
	opts := []remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(keychain), remote.WithJobs(jobs)}
	var (
		imgs  *image.Set
		paths map[digest.Digest]string // cached blob files by digest
	)
	rec := &uploadRecorder{sent: map[digest.Digest]bool{}}
	from := mountCandidates(e, o.Cache, ref.Context())
	switch {
	case len(from) == 0 && newRepository(ctx, ref.Context(), opts):
		// Nothing to skip: upload the layers while they are made.
		var pusher *remote.Pusher
		if pusher, err = remote.NewPusher(opts...); err == nil {
			opts = append(opts, remote.Reuse(pusher))
			imgs, paths, err = streamLayers(ctx, e, o.Cache, compression, ref.Context(), pusher, jobs, rec)
		}
	case o.Cache != nil:
		imgs, paths, err = cachedBlobs(e, o.Cache, compression)
	default:
		imgs, err = image.Digest(e, nil)
	}
	if err != nil {
		return nil, fmt.Errorf("export %q: push to %s: %w", e.Name, ref, err)
	}
	blobs := imgs.Blobs()
	layers := map[digest.Digest]partial.CompressedLayer{}
	for _, l := range image.Layers(e) {
		b := blobs[l.Plan.ID]
		layers[b.Digest] = &pushLayer{l: l, blob: b, compression: compression, rec: rec, path: paths[b.Digest]}
	}
	for _, img := range imgs.Images {
		for _, b := range img.BaseBlobs {
			layers[b.Digest] = &baseLayer{img: img, b: b, insecure: e.Insecure, rec: rec}
		}
	}
	mounted, err := mountLayers(ref.Context(), from, layers, nameOpts, opts)
	if err != nil {
		return nil, fmt.Errorf("export %q: push to %s: %w", e.Name, ref, err)
	}
	images := map[digest.Digest]v1.Image{}
	for _, img := range imgs.Images {
		pi, err := partial.CompressedToImage(&pushImage{config: img.Config, manifest: img.Manifest, layers: layers})
		if err != nil {
			return nil, fmt.Errorf("export %q: %w", e.Name, err)
		}
		images[img.ManifestDigest] = pi
	}
	report := &PushReport{Ref: ref.String(), Digest: imgs.Root().Digest}
	if imgs.Index == nil {
		err = remote.Write(ref, images[report.Digest], opts...)
	} else {
		err = remote.WriteIndex(ref, &pushIndex{raw: imgs.Index, images: images}, opts...)
	}
	if err != nil {
		return nil, fmt.Errorf("export %q: push to %s: %w", e.Name, ref, err)
	}
	if err := pushAttachments(ch, imgs, ref, opts); err != nil {
		return nil, fmt.Errorf("export %q: push to %s: %w", e.Name, ref, err)
	}
	if o.Cache != nil {
		if err := o.Cache.AddRepository(ref.Context().RegistryStr(), ref.Context().RepositoryStr()); err != nil {
			return nil, err
		}
	}
	for d := range layers {
		switch {
		case rec.wasSent(d):
			report.Uploaded = append(report.Uploaded, d)
		case mounted[d]:
			report.Mounted = append(report.Mounted, d)
		default:
			report.Skipped = append(report.Skipped, d)
		}
	}
	slices.Sort(report.Uploaded)
	slices.Sort(report.Skipped)
	slices.Sort(report.Mounted)
	return report, nil
}

// mountCandidates are the repositories of repo's registry a push to repo
// may mount blobs from: e's mount_from, then those the layer cache c
// recorded pushes to, without repo itself.
func mountCandidates(e *plan.Export, c *layercache.Cache, repo name.Repository) []string {
	var from []string
	add := func(r string) {
		if r != repo.RepositoryStr() && !slices.Contains(from, r) {
			from = append(from, r)
		}
	}
	for _, r := range e.MountFrom {
		add(r)
	}
	if c != nil {
		for _, r := range c.Repositories(repo.RegistryStr()) {
			add(r)
		}
	}
	return from
}

// mountLayers mounts into repo, from the first of the repositories from
// (of repo's registry) that holds it, each layer blob repo lacks
// (POST /v2/<repo>/blobs/uploads/?mount=<digest>&from=<repository>), and
// returns the blobs mounted. A blob no repository holds is left to the
// push to upload.
func mountLayers(repo name.Repository, from []string, layers map[digest.Digest]partial.CompressedLayer, nameOpts []name.Option, opts []remote.Option) (map[digest.Digest]bool, error) {
	mounted := map[digest.Digest]bool{}
	if len(from) == 0 {
		return mounted, nil
	}
	var repos []name.Repository
	for _, r := range from {
		fr, err := name.NewRepository(repo.RegistryStr()+"/"+r, nameOpts...)
		if err != nil {
			return nil, fmt.Errorf("mount_from %q: %w", r, err)
		}
		repos = append(repos, fr)
	}
	digests := slices.Sorted(maps.Keys(layers))
	for _, d := range digests {
		if blobExists(repo.Digest(string(d)), opts) {
			continue
		}
		for _, fr := range repos {
			src := fr.Digest(string(d))
			if !blobExists(src, opts) {
				continue
			}
			l, err := partial.CompressedToLayer(layers[d])
			if err != nil {
				return nil, err
			}
			if err := remote.WriteLayer(repo, &remote.MountableLayer{Layer: l, Reference: src}, opts...); err != nil {
				return nil, fmt.Errorf("mount %s from %s: %w", d, fr, err)
			}
			mounted[d] = true
			break
		}
	}
	return mounted, nil
}

// blobExists reports whether the registry answers a HEAD request for the
// blob ref with its size.
func blobExists(ref name.Digest, opts []remote.Option) bool {
	l, err := remote.Layer(ref, opts...)
	if err != nil {
		return false
	}
	_, err = l.Size()
	return err == nil
}

// newRepository reports whether the repository holds no tag (the registry
// answers that it does not know it, or lists no tag): then it holds none
// of the blobs either, as far as a push can tell. Any other answer, or
// none, says no.
func newRepository(ctx context.Context, repo name.Repository, opts []remote.Option) bool {
	p, err := remote.NewPuller(append(slices.Clone(opts), remote.WithPageSize(1))...)
	if err != nil {
		return false
	}
	l, err := p.Lister(ctx, repo)
	var terr *transport.Error
	if errors.As(err, &terr) && terr.StatusCode == http.StatusNotFound {
		return true
	}
	if err != nil {
		return false
	}
	tags, err := l.Next(ctx)
	return err == nil && len(tags.Tags) == 0
}

// streamLayers uploads every layer of e to repo, those the layer cache c
// holds from their blobs, the others while they are made (streamedLayer:
// GOMAXPROCS at a time, their digests recorded in the cache), jobs
// uploads at once in all, and returns e's images and the cached blob
// files by digest.
func streamLayers(ctx context.Context, e *plan.Export, c *layercache.Cache, compression format.Compression, repo name.Repository, p *remote.Pusher, jobs int, rec *uploadRecorder) (*image.Set, map[digest.Digest]string, error) {
	var (
		mu    sync.Mutex
		blobs = map[string]image.Blob{}
		paths = map[digest.Digest]string{}
	)
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(jobs)
	makers := make(chan struct{}, runtime.GOMAXPROCS(0))
	for _, l := range image.Layers(e) {
		hit, key, ok := image.Lookup(c, l, compression, true)
		g.Go(func() error {
			var layer v1.Layer
			if ok {
				layer = &pushLayer{l: l, blob: hit.Blob, compression: compression, rec: rec, path: hit.Path}
			} else {
				makers <- struct{}{}
				defer func() { <-makers }()
				layer = &streamedLayer{l: l, compression: compression, cache: c, key: key, rec: rec}
			}
			if err := p.Upload(ctx, repo, layer); err != nil {
				return fmt.Errorf("layer %s: %w", l.Plan.ID, err)
			}
			b := hit.Blob
			if !ok {
				b = *layer.(*streamedLayer).made()
			}
			mu.Lock()
			blobs[l.Plan.ID] = b
			if hit.Path != "" {
				paths[b.Digest] = hit.Path
			}
			mu.Unlock()
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, nil, err
	}
	imgs, err := image.Images(e, blobs)
	return imgs, paths, err
}

// streamedLayer is a layer blob made from the store while it is uploaded:
// its digests are known once the upload has read it all. Before, Digest
// and Size answer stream.ErrNotComputed, which has the registry client
// upload it unasked and commit it under the digest it has by then.
type streamedLayer struct {
	l           image.Layer
	compression format.Compression
	cache       *layercache.Cache
	key         layercache.Key
	rec         *uploadRecorder
	mu          sync.Mutex
	blob        *image.Blob
}

// made is the blob, once made; nil before.
func (s *streamedLayer) made() *image.Blob {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.blob
}

func (s *streamedLayer) Digest() (v1.Hash, error) {
	if b := s.made(); b != nil {
		return v1.NewHash(string(b.Digest))
	}
	return v1.Hash{}, stream.ErrNotComputed
}

func (s *streamedLayer) DiffID() (v1.Hash, error) {
	if b := s.made(); b != nil {
		return v1.NewHash(string(b.DiffID))
	}
	return v1.Hash{}, stream.ErrNotComputed
}

func (s *streamedLayer) Size() (int64, error) {
	if b := s.made(); b != nil {
		return b.BlobSize, nil
	}
	return 0, stream.ErrNotComputed
}

func (s *streamedLayer) MediaType() (types.MediaType, error) {
	mt, err := image.MediaType(s.compression)
	return types.MediaType(mt), err
}

// Compressed makes the blob into the returned reader; its digests are
// set before the reader ends, and kept in the layer cache as a record
// (the blob itself is not: writing it would compete with the upload for
// the disk, and a later push into this repository needs only the
// digests).
func (s *streamedLayer) Compressed() (io.ReadCloser, error) {
	pr, pw := io.Pipe()
	go func() {
		b, err := s.l.WriteBlob(pw, s.compression, nil)
		if err == nil {
			s.mu.Lock()
			s.blob = &b
			s.mu.Unlock()
			s.rec.record(b.Digest)
			image.Remember(s.cache, s.key, b)
		}
		pw.CloseWithError(err)
	}()
	return pr, nil
}

func (s *streamedLayer) Uncompressed() (io.ReadCloser, error) {
	return nil, errors.New("a streamed layer is only uploaded compressed")
}

// uploadRecorder notes the layer blobs whose contents were requested,
// which the registry client does only to upload them.
type uploadRecorder struct {
	mu   sync.Mutex
	sent map[digest.Digest]bool
}

func (r *uploadRecorder) record(d digest.Digest) {
	r.mu.Lock()
	r.sent[d] = true
	r.mu.Unlock()
}

func (r *uploadRecorder) wasSent(d digest.Digest) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.sent[d]
}

// pushLayer is a layer blob produced on demand from the store: it
// implements partial.CompressedLayer (and DiffID and Uncompressed) by
// streaming the layer writer through the compressor into a pipe.
type pushLayer struct {
	l           image.Layer
	blob        image.Blob
	compression format.Compression
	rec         *uploadRecorder
	// path is the blob's file in the layer cache, or "".
	path string
}

// cachedBlobs has the digests of every layer of e from the layer cache c
// (a layer it has no record of is written into it, the store read once)
// and returns e's images and the blob files the cache holds, by digest.
func cachedBlobs(e *plan.Export, c *layercache.Cache, compression format.Compression) (*image.Set, map[digest.Digest]string, error) {
	var mu sync.Mutex
	paths := map[digest.Digest]string{}
	blobs, err := image.Each(image.Layers(e), func(l image.Layer) (image.Blob, error) {
		// A record gives the digests even without its blob: then the
		// blob is made from the store only if the registry lacks it.
		hit, k, ok := image.Lookup(c, l, compression, false)
		b := hit.Blob
		var p string
		if ok {
			p, _ = c.Blob(b.Digest, b.BlobSize)
		} else {
			var err error
			if b, p, err = image.CacheBlob(c, l, compression, nil); err != nil {
				return b, err
			}
			if p == "" { // the cache could not keep it: hash it alone
				if b, err = l.WriteBlob(io.Discard, compression, nil); err != nil {
					return b, err
				}
			} else {
				image.Remember(c, k, b)
			}
		}
		mu.Lock()
		if p != "" {
			paths[b.Digest] = p
		}
		mu.Unlock()
		return b, nil
	})
	if err != nil {
		return nil, nil, err
	}
	imgs, err := image.Images(e, blobs)
	return imgs, paths, err
}

// Digest is the blob's digest.
func (l *pushLayer) Digest() (v1.Hash, error) { return v1.NewHash(string(l.blob.Digest)) }

// DiffID is the uncompressed tar's digest.
func (l *pushLayer) DiffID() (v1.Hash, error) { return v1.NewHash(string(l.blob.DiffID)) }

// Size is the blob's length.
func (l *pushLayer) Size() (int64, error) { return l.blob.BlobSize, nil }

// MediaType is the OCI layer media type of the compression.
func (l *pushLayer) MediaType() (types.MediaType, error) {
	mt, err := image.MediaType(l.compression)
	return types.MediaType(mt), err
}

// Compressed streams the blob. The reader fails if the bytes produced
// do not hash to the planned digest (a store file changed meanwhile).
func (l *pushLayer) Compressed() (io.ReadCloser, error) {
	l.rec.record(l.blob.Digest)
	if l.path != "" {
		if f, err := os.Open(l.path); err == nil {
			return f, nil
		}
	}
	return pipeFrom(func(w io.Writer) error {
		b, err := l.l.WriteBlob(w, l.compression, nil)
		if err == nil && b.Digest != l.blob.Digest {
			err = fmt.Errorf("layer %s: the blob hashes to %s now, %s when planned: store files changed", l.l.Plan.ID, b.Digest, l.blob.Digest)
		}
		return err
	}), nil
}

// Uncompressed streams the layer tar; an eStargz layer's diff id is not
// its tar's, and it is only uploaded compressed.
func (l *pushLayer) Uncompressed() (io.ReadCloser, error) {
	if l.compression == format.Estargz {
		return nil, errors.New("an eStargz layer is only uploaded compressed")
	}
	return pipeFrom(func(w io.Writer) error {
		_, _, err := l.l.WriteTar(w, nil)
		return err
	}), nil
}

// baseLayer is a layer blob of a base image, read from the base (or the
// layer cache) when the registry lacks it.
type baseLayer struct {
	img      *image.Image
	b        image.BaseBlob
	insecure bool
	rec      *uploadRecorder
}

func (l *baseLayer) Digest() (v1.Hash, error)            { return v1.NewHash(string(l.b.Digest)) }
func (l *baseLayer) DiffID() (v1.Hash, error)            { return v1.NewHash(string(l.b.DiffID)) }
func (l *baseLayer) Size() (int64, error)                { return l.b.BlobSize, nil }
func (l *baseLayer) MediaType() (types.MediaType, error) { return types.MediaType(l.b.MediaType), nil }

// Compressed reads the blob, checked against its digest.
func (l *baseLayer) Compressed() (io.ReadCloser, error) {
	l.rec.record(l.b.Digest)
	return openBaseBlob(l.img.Plan.Base.Ref, l.b, l.insecure, nil)
}

// pipeFrom runs fill in a goroutine writing into a pipe and returns the
// pipe's reader; fill's error reaches the reader, and closing the reader
// early makes fill's writes fail so that it stops.
func pipeFrom(fill func(io.Writer) error) io.ReadCloser {
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(fill(pw)) }()
	return pr
}

// pushImage is one system's image: partial.CompressedImageCore over the
// plan's config and manifest bytes and the export's layers.
type pushImage struct {
	config, manifest []byte
	layers           map[digest.Digest]partial.CompressedLayer
}

// RawConfigFile is the config's bytes.
func (p *pushImage) RawConfigFile() ([]byte, error) { return p.config, nil }

// MediaType is the OCI manifest media type.
func (p *pushImage) MediaType() (types.MediaType, error) { return types.OCIManifestSchema1, nil }

// RawManifest is the manifest's bytes.
func (p *pushImage) RawManifest() ([]byte, error) { return p.manifest, nil }

// LayerByDigest finds a layer blob of the export.
func (p *pushImage) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	if l, ok := p.layers[digest.Digest(h.String())]; ok {
		return l, nil
	}
	return nil, fmt.Errorf("no layer blob %s in the image", h)
}

// pushIndex is a multi-system export's image index: v1.ImageIndex over
// the plan's index bytes and its images.
type pushIndex struct {
	raw    []byte
	images map[digest.Digest]v1.Image
}

// MediaType is the OCI image index media type.
func (p *pushIndex) MediaType() (types.MediaType, error) { return types.OCIImageIndex, nil }

// Digest is the index's digest.
func (p *pushIndex) Digest() (v1.Hash, error) { return v1.NewHash(string(digest.FromBytes(p.raw))) }

// Size is the index's length.
func (p *pushIndex) Size() (int64, error) { return int64(len(p.raw)), nil }

// IndexManifest parses the index.
func (p *pushIndex) IndexManifest() (*v1.IndexManifest, error) {
	return v1.ParseIndexManifest(bytes.NewReader(p.raw))
}

// RawManifest is the index's bytes.
func (p *pushIndex) RawManifest() ([]byte, error) { return p.raw, nil }

// Image is the system image whose manifest has digest h.
func (p *pushIndex) Image(h v1.Hash) (v1.Image, error) {
	if img, ok := p.images[digest.Digest(h.String())]; ok {
		return img, nil
	}
	return nil, fmt.Errorf("no image %s in the index", h)
}

// ImageIndex fails: the index holds images only.
func (p *pushIndex) ImageIndex(h v1.Hash) (v1.ImageIndex, error) {
	return nil, fmt.Errorf("no image index %s in the index", h)
}
