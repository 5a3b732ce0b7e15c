package export

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/storepack/storepack/export/image"
	"github.com/storepack/storepack/format"
	"github.com/storepack/storepack/internal/layercache"
	"github.com/storepack/storepack/internal/oracle"
	"github.com/storepack/storepack/plan"
)

// pushedImages are e's images as image.Digest computes them, and their
// distinct layer blobs, sorted.
func pushedImages(t *testing.T, e *plan.Export) (*image.Set, []digest.Digest) {
	t.Helper()
	imgs, err := image.Digest(e, nil)
	if err != nil {
		t.Fatal(err)
	}
	var out []digest.Digest
	for _, img := range imgs.Images {
		for _, b := range img.Blobs {
			if !slices.Contains(out, b.Digest) {
				out = append(out, b.Digest)
			}
		}
	}
	slices.Sort(out)
	return imgs, out
}

func TestPushRegistry(t *testing.T) {
	skopeo := oracle.Require(t, "skopeo")
	reg := oracle.StartRegistry(t)
	tests := []struct {
		name        string
		compression format.Compression
		systems     []string
	}{
		{"one system gzip", "gzip", []string{"x86_64-linux"}},
		{"two systems zstd", "zstd", []string{"x86_64-linux", "aarch64-linux"}},
		{"one system none", "none", []string{"x86_64-linux"}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ref := fmt.Sprintf("%s/storepack/runnable%d:1.0", reg.Host, i)
			planOf := func() *plan.Export {
				e, _ := runnableOCI(t, "/gnu/store", "localhost/runnable:1.0", tt.compression, tt.systems...)
				e.Push, e.Insecure = ref, true
				return e
			}
			e := planOf()
			before := reg.BlobUploads()
			rep, err := Push(context.Background(), e, PushOptions{Keychain: authn.NewMultiKeychain()})
			if err != nil {
				t.Fatal(err)
			}
			imgs, all := pushedImages(t, e)
			if !slices.Equal(rep.Uploaded, all) || len(rep.Skipped) != 0 {
				t.Errorf("first push: uploaded %v skipped %v, want every layer %v uploaded", rep.Uploaded, rep.Skipped, all)
			}
			if reg.BlobUploads() == before {
				t.Error("the registry's log shows no blob upload for the first push")
			}

			raw := run(t, skopeo, "inspect", "--tls-verify=false", "--raw", "docker://"+ref)
			if got := digest.FromBytes(raw); got != rep.Digest {
				t.Errorf("the registry holds %s, the push reported %s", got, rep.Digest)
			}
			if len(e.Systems) == 1 {
				if want := imgs.Images[0].Manifest; !bytes.Equal(raw, want) {
					t.Errorf("the registry's manifest differs from the image's:\n%s\n%s", raw, want)
				}
			} else {
				var idx ocispec.Index
				if err := json.Unmarshal(raw, &idx); err != nil {
					t.Fatal(err)
				}
				if want := imgs.Index; !bytes.Equal(raw, want) || len(idx.Manifests) != len(e.Systems) {
					t.Errorf("the registry's index differs from the images':\n%s\n%s", raw, want)
				}
			}
			for j, sys := range e.Systems {
				p := sys.Image.Platform
				args := []string{"inspect", "--tls-verify=false", "--override-os", "linux", "--override-arch", p.Architecture, "docker://" + ref}
				var got struct{ Layers []digest.Digest }
				if err := json.Unmarshal(run(t, skopeo, args...), &got); err != nil {
					t.Fatal(err)
				}
				var want []digest.Digest
				for _, b := range imgs.Images[j].Blobs {
					want = append(want, b.Digest)
				}
				if !slices.Equal(got.Layers, want) {
					t.Errorf("%s: the registry has layers %v, the plan %v", sys.Name, got.Layers, want)
				}
			}

			// The same image again: nothing is uploaded.
			before = reg.BlobUploads()
			rep, err = Push(context.Background(), planOf(), PushOptions{Keychain: authn.NewMultiKeychain()})
			if err != nil {
				t.Fatal(err)
			}
			if len(rep.Uploaded) != 0 || !slices.Equal(rep.Skipped, all) {
				t.Errorf("second push: uploaded %v skipped %v, want nothing uploaded", rep.Uploaded, rep.Skipped)
			}
			if n := reg.BlobUploads() - before; n != 0 {
				t.Errorf("the registry's log shows %d blob uploads for the unchanged image", n)
			}

			// Another config over the same layers: the registry has every
			// layer blob (checked one by one), only the config and
			// manifest are new.
			changed := planOf()
			for i := range changed.Systems {
				img := changed.Systems[i].Image
				img.Config.Cmd = []string{"changed"}
			}
			changed.Push = strings.Replace(ref, ":1.0", ":changed", 1)
			rep, err = Push(context.Background(), changed, PushOptions{Keychain: authn.NewMultiKeychain()})
			if err != nil {
				t.Fatal(err)
			}
			if len(rep.Uploaded) != 0 || !slices.Equal(rep.Skipped, all) {
				t.Errorf("push of a new config: uploaded %v skipped %v, want every layer skipped", rep.Uploaded, rep.Skipped)
			}
			if got := digest.FromBytes(run(t, skopeo, "inspect", "--tls-verify=false", "--raw", "docker://"+changed.Push)); got != rep.Digest {
				t.Errorf("the registry holds %s under :changed, the push reported %s", got, rep.Digest)
			}
		})
	}
}

func TestPushErrors(t *testing.T) {
	e, _ := runnableOCI(t, "/gnu/store", "localhost/runnable:1.0", "gzip", "x86_64-linux")
	if _, err := Push(context.Background(), e, PushOptions{}); err == nil || !strings.Contains(err.Error(), "no push reference") {
		t.Errorf("no push: %v", err)
	}
	e.Push = "Not A Reference"
	if _, err := Push(context.Background(), e, PushOptions{}); err == nil || !strings.Contains(err.Error(), "Not A Reference") {
		t.Errorf("bad reference: %v", err)
	}
	// Nothing listens on this loopback port: the push fails, naming it.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	host := l.Addr().String()
	l.Close()
	e.Push, e.Insecure = host+"/x:1", true
	if _, err := Push(context.Background(), e, PushOptions{Keychain: authn.NewMultiKeychain()}); err == nil || !strings.Contains(err.Error(), host) {
		t.Errorf("push to a closed port: %v", err)
	}
}

// TestPushStreamed: into a new repository, layers the layer cache lacks
// are uploaded while they are made, with the digests the plan's images
// have, and the cache records their digests (not their blobs); a push
// into that repository then needs nothing from the store (its items are
// moved away) and uploads nothing. Layers the cache holds as blobs are
// sent from them, the store unread. Into a repository holding a tag, a
// push with an empty cache computes the digests first and uploads nothing
// the registry has.
func TestPushStreamed(t *testing.T) {
	skopeo := oracle.Require(t, "skopeo")
	reg := oracle.StartRegistry(t)
	for _, compression := range []format.Compression{"gzip", "zstd"} {
		t.Run(string(compression), func(t *testing.T) {
			newCache := func() *layercache.Cache {
				c, err := layercache.Open(t.TempDir())
				if err != nil {
					t.Fatal(err)
				}
				return c
			}
			e, _ := runnableOCI(t, "/gnu/store", "localhost/runnable:1.0", compression, "x86_64-linux")
			imgs, all := pushedImages(t, e)
			push := func(ref string, c *layercache.Cache) *PushReport {
				t.Helper()
				e.Push, e.Insecure = ref, true
				before := reg.BlobUploads()
				rep, err := Push(context.Background(), e, PushOptions{Keychain: authn.NewMultiKeychain(), Cache: c})
				if err != nil {
					t.Fatal(err)
				}
				if rep.Digest != imgs.Images[0].ManifestDigest {
					t.Errorf("%s: pushed %s, the plan's manifest is %s", ref, rep.Digest, imgs.Images[0].ManifestDigest)
				}
				raw := run(t, skopeo, "inspect", "--tls-verify=false", "--raw", "docker://"+ref)
				if !bytes.Equal(raw, imgs.Images[0].Manifest) {
					t.Errorf("%s: the registry's manifest differs from the plan's:\n%s\n%s", ref, raw, imgs.Images[0].Manifest)
				}
				if n := reg.BlobUploads() - before; n < len(rep.Uploaded) {
					t.Errorf("%s: the registry's log shows %d blob uploads, the report %d", ref, n, len(rep.Uploaded))
				}
				return rep
			}
			storeAway := func() (back func()) {
				var moved []string
				for i := range e.Systems {
					for _, it := range e.Systems[i].Closure {
						if err := os.Rename(it.FSPath, it.FSPath+".away"); err != nil {
							t.Fatal(err)
						}
						moved = append(moved, it.FSPath)
					}
				}
				return func() {
					for _, p := range moved {
						if err := os.Rename(p+".away", p); err != nil {
							t.Fatal(err)
						}
					}
				}
			}

			cache := newCache()
			first := fmt.Sprintf("%s/streamed/%s:1", reg.Host, compression)
			if rep := push(first, cache); !slices.Equal(rep.Uploaded, all) {
				t.Errorf("first push: uploaded %v, want every layer %v", rep.Uploaded, all)
			}
			for _, l := range image.Layers(e) {
				hit, _, ok := image.Lookup(cache, l, compression, false)
				if !ok || !slices.Contains(all, hit.Blob.Digest) {
					t.Errorf("layer %s: no record of its digests after the push: %+v", l.Plan.ID, hit)
				}
				if _, _, ok := image.Lookup(cache, l, compression, true); ok {
					t.Errorf("layer %s: a streamed push kept its blob", l.Plan.ID)
				}
			}
			back := storeAway()
			if rep := push(strings.Replace(first, ":1", ":2", 1), cache); len(rep.Uploaded) != 0 || !slices.Equal(rep.Skipped, all) {
				t.Errorf("push into the repository with the recorded digests: uploaded %v skipped %v, want every layer skipped", rep.Uploaded, rep.Skipped)
			}
			back()

			// Cached blobs (as an export leaves them), the store away.
			blobs := newCache()
			if _, _, err := cachedBlobs(e, blobs, compression); err != nil {
				t.Fatal(err)
			}
			back = storeAway()
			if rep := push(fmt.Sprintf("%s/streamed/%s-blobs:1", reg.Host, compression), blobs); !slices.Equal(rep.Uploaded, all) {
				t.Errorf("push from cached blobs: uploaded %v, want every layer %v", rep.Uploaded, all)
			}
			back()

			// A repository with a tag, an empty cache: nothing uploaded.
			if rep := push(strings.Replace(first, ":1", ":3", 1), newCache()); len(rep.Uploaded) != 0 || !slices.Equal(rep.Skipped, all) {
				t.Errorf("push into a repository with a tag: uploaded %v skipped %v, want every layer skipped", rep.Uploaded, rep.Skipped)
			}
		})
	}
}

// TestPushStreamedError: a store item gone while a streamed push reads it
// fails the push, naming it, and the registry gets no manifest.
func TestPushStreamedError(t *testing.T) {
	skopeo := oracle.Require(t, "skopeo")
	reg := oracle.StartRegistry(t)
	e, _ := runnableOCI(t, "/gnu/store", "localhost/runnable:1.0", "gzip", "x86_64-linux")
	e.Push, e.Insecure = reg.Host+"/streamed/broken:1", true
	gone := e.Systems[0].Closure[0].FSPath
	if err := os.Rename(gone, gone+".away"); err != nil {
		t.Fatal(err)
	}
	defer os.Rename(gone+".away", gone)
	_, err := Push(context.Background(), e, PushOptions{Keychain: authn.NewMultiKeychain()})
	if err == nil || !strings.Contains(err.Error(), gone) {
		t.Fatalf("push with %s gone: %v, want an error naming it", gone, err)
	}
	if out, err := exec.Command(skopeo, "inspect", "--tls-verify=false", "--raw", "docker://"+e.Push).CombinedOutput(); err == nil {
		t.Errorf("the registry holds a manifest after the failed push: %s", out)
	}
}

// TestPushMounts: a push into a repository of a registry that holds the
// blobs in another repository mounts them (the registry's log shows
// ?mount=&from=) instead of uploading them: from mount_from, or by
// default from the repositories the layer cache recorded pushes to.
func TestPushMounts(t *testing.T) {
	reg := oracle.StartRegistry(t)
	cache, err := layercache.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	planOf := func(repo string, mountFrom ...string) *plan.Export {
		e, _ := runnableOCI(t, "/gnu/store", "localhost/runnable:1.0", "gzip", "x86_64-linux")
		e.Push, e.Insecure, e.MountFrom = reg.Host+"/"+repo+":1.0", true, mountFrom
		return e
	}
	e := planOf("storepack/first")
	if _, err := Push(context.Background(), e, PushOptions{Keychain: authn.NewMultiKeychain(), Cache: cache}); err != nil {
		t.Fatal(err)
	}
	_, all := pushedImages(t, e)
	tests := []struct {
		name  string
		e     *plan.Export
		cache *layercache.Cache
	}{
		{"mount_from", planOf("storepack/second", "storepack/elsewhere", "storepack/first"), nil},
		{"repositories the cache recorded", planOf("storepack/third"), cache},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := reg.BlobUploads()
			logBefore := len(reg.Log())
			rep, err := Push(context.Background(), tt.e, PushOptions{Keychain: authn.NewMultiKeychain(), Cache: tt.cache})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(rep.Mounted, all) || len(rep.Uploaded) != 0 || len(rep.Skipped) != 0 {
				t.Errorf("mounted %v uploaded %v skipped %v, want every layer %v mounted", rep.Mounted, rep.Uploaded, rep.Skipped, all)
			}
			log := reg.Log()[logBefore:]
			if !strings.Contains(log, "mount=") || !strings.Contains(log, "from=storepack") {
				t.Errorf("the registry's log shows no mount request:\n%s", log)
			}
			// The config is a blob too, uploaded: only the layers mount.
			if n := reg.BlobUploads() - before; n > 1 {
				t.Errorf("the registry's log shows %d blob uploads, want the config's alone", n)
			}
		})
	}
	if got := cache.Repositories(reg.Host); !slices.Equal(got, []string{"storepack/first", "storepack/third"}) {
		t.Errorf("the cache records pushes to %v", got)
	}
}
