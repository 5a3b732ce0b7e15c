package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/storepack/storepack/internal/oracle"
)

// clientOutput runs a real client and returns its output; a failure fails
// the test.
func clientOutput(t *testing.T, tool string, args ...string) string {
	t.Helper()
	bin := oracle.Require(t, tool)
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", tool, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestLayoutReferrersClients: the SBOM and provenance referrers of an OCI
// layout, as other clients find them. regctl finds them by the fallback
// tag sha256-<hex> (no --slow-referrers scan); oras lists them and pulls
// each SBOM and the provenance to a file named by its title, with the
// bytes of the side file beside the layout.
func TestLayoutReferrersClients(t *testing.T) {
	oracle.Require(t, "regctl")
	oracle.Require(t, "oras")
	dir := specDir(t)
	supplySpec(t, dir, "")
	out := filepath.Join(t.TempDir(), "out")
	ok(t, nil, "export", "-q", "-C", dir, "--out", out, "signed-layout")
	layout := filepath.Join(out, "signed-layout")
	var index struct {
		Manifests []struct {
			Digest      string
			Annotations map[string]string
		}
	}
	ib, err := os.ReadFile(filepath.Join(layout, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(ib, &index); err != nil {
		t.Fatal(err)
	}
	root := index.Manifests[0].Digest
	want := []string{"application/spdx+json", "application/vnd.cyclonedx+json", "application/vnd.in-toto+json", "application/vnd.dev.cosign.artifact.sig.v1+json"}

	listed := clientOutput(t, "regctl", "artifact", "list", "--format", "{{json .}}", "ocidir://"+layout+"@"+root)
	for _, w := range want {
		if !strings.Contains(listed, `"artifactType":"`+w+`"`) {
			t.Errorf("regctl artifact list (no --slow-referrers) does not list a %s referrer:\n%s", w, listed)
		}
	}

	discovered := clientOutput(t, "oras", "discover", "--format", "json", "--oci-layout", layout+"@"+root)
	for _, w := range want {
		if !strings.Contains(discovered, w) {
			t.Errorf("oras discover does not list a %s referrer:\n%s", w, discovered)
		}
	}
	var d struct {
		Referrers []struct {
			Digest       string
			ArtifactType string
		}
	}
	if err := json.Unmarshal([]byte(discovered), &d); err != nil {
		t.Fatalf("oras discover: %v\n%s", err, discovered)
	}
	files := map[string]string{"application/spdx+json": "signed-layout.spdx.json", "application/vnd.cyclonedx+json": "signed-layout.cdx.json", "application/vnd.in-toto+json": "signed-layout.intoto.json"}
	for _, r := range d.Referrers {
		name, ok := files[r.ArtifactType]
		if !ok {
			continue
		}
		delete(files, r.ArtifactType)
		pulled := t.TempDir()
		clientOutput(t, "oras", "pull", "--oci-layout", "-o", pulled, layout+"@"+r.Digest)
		got, err := os.ReadFile(filepath.Join(pulled, name))
		if err != nil {
			t.Errorf("oras pull of the %s referrer wrote no %s: %v", r.ArtifactType, name, err)
			continue
		}
		side, err := os.ReadFile(filepath.Join(out, name))
		if err != nil {
			t.Fatal(err)
		}
		if r.ArtifactType != "application/vnd.in-toto+json" && !bytes.Equal(got, side) {
			t.Errorf("oras pulled %s, which differs from the side file", name)
		}
	}
	if len(files) != 0 {
		t.Errorf("oras discover found no referrer for %v", files)
	}
}
