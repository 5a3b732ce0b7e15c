package export

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/storepack/storepack/export/image"
	"github.com/storepack/storepack/format"
	"github.com/storepack/storepack/internal/fixture"
	"github.com/storepack/storepack/internal/oracle"
	"github.com/storepack/storepack/plan"
	"github.com/storepack/storepack/spec"
)

// lazyExport plans an oci export of the runnable closure with the layer
// encoding c, split into at most maxLayers layers (0: the default).
func lazyExport(t *testing.T, tag string, c format.Compression, maxLayers int) *plan.Export {
	t.Helper()
	f := fixture.Write(t, "/gnu/store", "", runnableItems(t))
	hello := string(f.ByName["hello-script"])
	e := &spec.Export{
		Name:       "runnable",
		Format:     format.Format("oci"),
		Entrypoint: []string{hello + "/bin/hello"},
		Cmd:        []string{"from", "cmd"},
		Symlinks:   map[string]string{"/bin": string(f.ByName["busybox-static"]) + "/bin"},
		Image:      spec.Image{Tag: tag, Compression: c, MaxLayers: maxLayers},
	}
	return &plan.Export{Name: e.Name, Format: e.Format, Systems: []plan.System{*f.System(t, "x86_64-linux", e, "hello-script")}}
}

// privatePodman is podman with a storage and state of its own under a
// temporary folder (oracle.PrivatePodman), partial pulls on: the storage
// other tests use is left alone.
// It returns podman's output; its log (stderr) goes to the last
// argument's *bytes.Buffer when there is one.
func privatePodman(t *testing.T) func(args ...any) []byte {
	t.Helper()
	oracle.Require(t, "runc")
	p, err := oracle.NewPrivatePodman(oracle.Require(t, "podman"), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	// Unmounts the layers before the temporary folder goes.
	t.Cleanup(func() { p.Close() })
	return func(args ...any) []byte {
		t.Helper()
		var stderr bytes.Buffer
		var words []string
		for _, a := range args {
			switch a := a.(type) {
			case string:
				words = append(words, a)
			case *bytes.Buffer:
				defer func() { a.Write(stderr.Bytes()) }()
			}
		}
		cmd := p.Command(words...)
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%s: %v\n%s%s", strings.Join(cmd.Args, " "), err, out, stderr.Bytes())
		}
		return out
	}
}

// TestLazyPodmanPull pushes images with zstd:chunked and eStargz layers
// to a loopback registry: skopeo shows each layer's annotations, every
// pushed layer passes the verifier (for eStargz the estargz package's
// own), and podman, with partial pulls on, pulls and runs the image. For
// zstd:chunked, a second image holding the same files in other layers
// then pulls far fewer bytes than its layers hold (the registry's log).
func TestLazyPodmanPull(t *testing.T) {
	skopeo := oracle.Require(t, "skopeo")
	reg := oracle.StartRegistry(t)
	tests := []struct {
		c           format.Compression
		annotations []string
	}{
		{format.ZstdChunked, []string{image.ChunkedChecksumAnnotation, image.ChunkedPositionAnnotation, image.ChunkedChecksumAnnotationNew, image.ChunkedPositionAnnotationNew}},
		{format.Estargz, []string{"containerd.io/snapshot/stargz/toc.digest", "io.containers.estargz.uncompressed-size"}},
	}
	for i, tt := range tests {
		t.Run(string(tt.c), func(t *testing.T) {
			podman := privatePodman(t)
			push := func(repo string, maxLayers int) (string, ocispec.Manifest) {
				t.Helper()
				ref := fmt.Sprintf("%s/%s:1", reg.Host, repo)
				e := lazyExport(t, "localhost/lazy:1", tt.c, maxLayers)
				e.Push, e.Insecure = ref, true
				if _, err := Push(context.Background(), e, PushOptions{Keychain: authn.NewMultiKeychain()}); err != nil {
					t.Fatal(err)
				}
				var m ocispec.Manifest
				if err := json.Unmarshal(run(t, skopeo, "inspect", "--tls-verify=false", "--raw", "docker://"+ref), &m); err != nil {
					t.Fatal(err)
				}
				for _, l := range m.Layers {
					for _, a := range tt.annotations {
						if l.Annotations[a] == "" {
							t.Errorf("%s: layer %s has no annotation %s: %v", ref, l.Digest, a, l.Annotations)
						}
					}
					resp, err := http.Get(fmt.Sprintf("http://%s/v2/%s/blobs/%s", reg.Host, repo, l.Digest))
					if err != nil {
						t.Fatal(err)
					}
					blob, err := io.ReadAll(resp.Body)
					resp.Body.Close()
					if err != nil {
						t.Fatal(err)
					}
					if err := image.VerifyLazy(bytes.NewReader(blob), int64(len(blob)), tt.c, l.Annotations); err != nil {
						t.Errorf("%s: layer %s: %v", ref, l.Digest, err)
					}
				}
				return ref, m
			}
			var pullLog bytes.Buffer // the second pull's debug log
			runs := func(ref string, pullArgs ...any) {
				t.Helper()
				podman(append(pullArgs, "pull", "--tls-verify=false", ref)...)
				out := strings.TrimSpace(string(podman("run", "--rm", "--network", "none", ref)))
				if want := runnableOutput + " from cmd"; out != want {
					t.Errorf("podman run %s printed %q, want %q", ref, out, want)
				}
			}
			first, _ := push(fmt.Sprintf("lazy/split%d", i), 0)
			runs(first)
			if tt.c != format.ZstdChunked {
				return
			}
			repo := fmt.Sprintf("lazy/whole%d", i)
			second, m := push(repo, 1)
			var layerBytes int64
			for _, l := range m.Layers {
				layerBytes += l.Size
			}
			before := oracle.BlobBytesServed(reg.Log(), repo, nil)
			runs(second, "--log-level=debug", &pullLog)
			// The config is a blob too: count it aside.
			served := oracle.BlobBytesServed(reg.Log(), repo, nil) - before - m.Config.Size
			t.Logf("second image: %d layer bytes, %d served to the partial pull", layerBytes, served)
			if served <= 0 || served*2 > layerBytes {
				// podman falls back to a whole pull when a partial one
				// fails, and says why in its debug log alone.
				var why []string
				for _, l := range strings.Split(pullLog.String(), "\n") {
					if strings.Contains(l, "partial blob") || strings.Contains(l, "differ") || strings.Contains(l, "level=warning") || strings.Contains(l, "level=error") {
						why = append(why, l)
					}
				}
				t.Errorf("the partial pull of the second image took %d of its %d layer bytes; want under half; podman's log on it:\n%s",
					served, layerBytes, strings.Join(why, "\n"))
			}
		})
	}
}
