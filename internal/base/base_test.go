package base

import (
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/storepack/storepack/internal/platform"
)

func TestCheckRef(t *testing.T) {
	for _, tt := range []struct{ ref, err string }{
		{"oci:/srv/layout", ""},
		{"oci:/srv/layout:base:1", ""},
		{"docker-archive:/srv/busybox.tar", ""},
		{"registry.example.org/library/busybox@sha256:" + strings.Repeat("a", 64), ""},
		{"registry.example.org/library/busybox:1", ""}, // checked when resolved
		{"oci:", "needs a folder"},
		{"docker-archive:", "needs a file"},
		{"UPPER/case", "could not parse"},
	} {
		err := CheckRef(tt.ref, Options{})
		if (tt.err == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), tt.err) {
			t.Errorf("CheckRef(%q) = %v, want %q", tt.ref, err, tt.err)
		}
	}
}

func TestOCILayerType(t *testing.T) {
	for mt, want := range map[types.MediaType]string{
		types.DockerLayer:             "application/vnd.oci.image.layer.v1.tar+gzip",
		types.DockerUncompressedLayer: "application/vnd.oci.image.layer.v1.tar",
		types.OCILayer:                "application/vnd.oci.image.layer.v1.tar+gzip",
		types.OCILayerZStd:            "application/vnd.oci.image.layer.v1.tar+zstd",
	} {
		if got, err := ociLayerType(mt); err != nil || got != want {
			t.Errorf("ociLayerType(%s) = %q, %v; want %q", mt, got, err, want)
		}
	}
	if _, err := ociLayerType(types.DockerForeignLayer); err == nil {
		t.Error("a foreign layer was taken")
	}
}

// TestResolveLayout resolves the multi-platform layout gen's tests use (an
// index of two platforms, tagged base:1) for each platform.
func TestResolveLayout(t *testing.T) {
	ref := "oci:../../gen/testdata/base-layout:base:1"
	amd, err := Resolve(ref, platform.Platform{OS: "linux", Architecture: "amd64"}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	arm, err := Resolve(ref, platform.Platform{OS: "linux", Architecture: "arm64"}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if amd.Digest == arm.Digest || len(amd.Layers) == 0 || len(amd.History) != len(amd.Layers) {
		t.Errorf("amd64 %s (%d layers, %d history), arm64 %s", amd.Digest, len(amd.Layers), len(amd.History), arm.Digest)
	}
	if len(amd.Config.Cmd) != 1 || amd.Config.Cmd[0] != "date" || len(amd.Config.Env) != 1 {
		t.Errorf("config %+v", amd.Config)
	}
	if _, err := Resolve(ref, platform.Platform{OS: "linux", Architecture: "riscv64"}, Options{}); err == nil || !strings.Contains(err.Error(), "no image for linux/riscv64") {
		t.Errorf("a platform the base lacks: %v", err)
	}
	if _, err := Resolve("oci:../../gen/testdata/base-layout:other", platform.Platform{OS: "linux", Architecture: "amd64"}, Options{}); err == nil || !strings.Contains(err.Error(), `0 entries tagged "other"`) {
		t.Errorf("a tag the layout lacks: %v", err)
	}
	rc, err := Open(ref, amd.Layers[0].Digest, Options{})
	if err != nil {
		t.Fatal(err)
	}
	rc.Close()
}
