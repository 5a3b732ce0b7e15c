package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/storepack/storepack/internal/oracle"
)

// supplySpec adds exports with SBOMs, provenance and signatures by the
// key dir/release.key to the test spec in dir.
func supplySpec(t *testing.T, dir, push string) {
	t.Helper()
	ok(t, nil, "keygen", "--pem", filepath.Join(dir, "release"))
	spec := `locals {
  greeting = "/gnu/store/bccn8y94f8gq8v2vx3j2rlvg1chb1xhq-greeting"
}

export "signed-tarball" {
  format     = "tarball"
  paths      = [local.greeting, source.app.store_path]
  systems    = ["x86_64-linux"]
  sbom       = ["spdx", "cyclonedx"]
  provenance = true
  sign_key   = "release.key"
}

export "signed-layout" {
  format      = "oci"
  paths       = [local.greeting]
  systems     = ["x86_64-linux", "aarch64-linux"]
  tag         = "greeting:1.0"
  sbom        = ["spdx", "cyclonedx"]
  provenance  = true
  sign_key    = "release.key"
  annotations = { "org.opencontainers.image.source" = "https://example.org/greeting" }
}

export "contents" {
  format     = "docker"
  paths      = [local.greeting, source.app.store_path]
  systems    = ["x86_64-linux"]
  user       = "app"
  max_layers = 4
  account "app" {
    uid = 1000
  }
  file "/etc/app/run.sh" {
    source = "app/run.sh"
    mode   = "0755"
    uid    = 1000
  }
  layer "greeting" {
    paths = [local.greeting]
  }
}

export "signed-docker" {
  format   = "docker"
  paths    = [local.greeting]
  systems  = ["x86_64-linux"]
  sbom     = ["cyclonedx"]
  sign_key = "release.key"
}
`
	if push != "" {
		spec += `
export "signed-push" {
  format     = "oci"
  paths      = [local.greeting]
  systems    = ["x86_64-linux", "aarch64-linux"]
  tag        = "greeting:1.0"
  sbom       = ["spdx", "cyclonedx"]
  provenance = true
  sign_key   = "release.key"
  push       = "` + push + `"
  insecure   = true
}
`
	}
	if err := os.WriteFile(filepath.Join(dir, "supply.hcl"), []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
}

// cosign runs the real cosign offline (no transparency log, a TUF root of
// its own) and returns its combined output; want says whether it must
// succeed.
func cosign(t *testing.T, want bool, args ...string) string {
	t.Helper()
	bin := oracle.Require(t, "cosign")
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "TUF_ROOT="+t.TempDir(), "SIGSTORE_NO_CACHE=true")
	out, err := cmd.CombinedOutput()
	if (err == nil) != want {
		t.Errorf("cosign %s: %v (want success %v)\n%s", strings.Join(args, " "), err, want, out)
	}
	return string(out)
}

// TestSupplyChainFiles: SBOMs, provenance and blob signatures beside the
// outputs, checked by the real cosign; an OCI layout that cosign verifies
// itself, signatures and attestations of each predicate type.
func TestSupplyChainFiles(t *testing.T) {
	oracle.Require(t, "cosign")
	dir := specDir(t)
	supplySpec(t, dir, "")
	out := filepath.Join(t.TempDir(), "out")
	ok(t, nil, "export", "-q", "-C", dir, "--out", out, "signed-tarball", "signed-layout", "signed-docker")
	pub := filepath.Join(dir, "release.pub")
	o := func(name string) string { return filepath.Join(out, name) }

	// Blob signatures of every file written beside an output, and of the
	// outputs that are files.
	for _, f := range []string{
		"signed-tarball.tar.gz", "signed-tarball.tar.gz.spdx.json", "signed-tarball.tar.gz.cdx.json", "signed-tarball.tar.gz.intoto.json",
		"signed-layout.spdx.json", "signed-layout.cdx.json", "signed-layout.intoto.json",
		"signed-docker.tar", "signed-docker.tar.cdx.json",
	} {
		cosign(t, true, "verify-blob", "--insecure-ignore-tlog", "--key", pub, "--signature", o(f+".sig"), o(f))
	}
	// A changed byte fails.
	b, err := os.ReadFile(o("signed-tarball.tar.gz.spdx.json"))
	if err != nil {
		t.Fatal(err)
	}
	tampered := filepath.Join(t.TempDir(), "tampered.json")
	os.WriteFile(tampered, bytes.Replace(b, []byte("SPDX-2.3"), []byte("SPDX-2.2"), 1), 0o644)
	cosign(t, false, "verify-blob", "--insecure-ignore-tlog", "--key", pub, "--signature", o("signed-tarball.tar.gz.spdx.json.sig"), tampered)

	// The layout: the index signed, the three attestations.
	cosign(t, true, "verify", "--insecure-ignore-tlog", "--key", pub, "--local-image", o("signed-layout"))
	for _, typ := range []string{"spdxjson", "cyclonedx", "slsaprovenance1"} {
		cosign(t, true, "verify-attestation", "--insecure-ignore-tlog", "--key", pub, "--type", typ, "--local-image", o("signed-layout"))
	}
	// The layout's referrers: the SBOMs, the provenance and the
	// signature, each an OCI 1.1 artifact whose subject is the index.
	var index struct {
		Manifests []struct {
			Digest       string
			ArtifactType string
			Annotations  map[string]string
		}
	}
	ib, _ := os.ReadFile(o("signed-layout/index.json"))
	if err := json.Unmarshal(ib, &index); err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, m := range index.Manifests[1:] {
		if m.ArtifactType == "" {
			continue
		}
		types = append(types, m.ArtifactType)
		mb, err := os.ReadFile(o("signed-layout/blobs/sha256/" + strings.TrimPrefix(m.Digest, "sha256:")))
		if err != nil {
			t.Fatal(err)
		}
		var rm struct{ Subject struct{ Digest string } }
		json.Unmarshal(mb, &rm)
		if rm.Subject.Digest != index.Manifests[0].Digest {
			t.Errorf("referrer %s: subject %s, want the index %s", m.ArtifactType, rm.Subject.Digest, index.Manifests[0].Digest)
		}
	}
	if got := strings.Join(types, " "); got != "application/spdx+json application/vnd.cyclonedx+json application/vnd.in-toto+json application/vnd.dev.cosign.artifact.sig.v1+json" {
		t.Errorf("the layout's referrers: %s", got)
	}
	if index.Manifests[0].Annotations["kind"] != "dev.cosignproject.cosign/imageIndex" {
		t.Errorf("the index entry's annotations: %v", index.Manifests[0].Annotations)
	}

	// Another key fails.
	other := filepath.Join(t.TempDir(), "other")
	ok(t, nil, "keygen", "--pem", other)
	cosign(t, false, "verify", "--insecure-ignore-tlog", "--key", other+".pub", "--local-image", o("signed-layout"))
	cosign(t, false, "verify-blob", "--insecure-ignore-tlog", "--key", other+".pub", "--signature", o("signed-docker.tar.sig"), o("signed-docker.tar"))

	// The provenance names the output file and every image.
	var st struct {
		Type    string `json:"_type"`
		Subject []struct {
			Name   string
			Digest map[string]string
		}
		PredicateType string
	}
	pb, _ := os.ReadFile(o("signed-layout.intoto.json"))
	if err := json.Unmarshal(pb, &st); err != nil {
		t.Fatal(err)
	}
	if st.Type != "https://in-toto.io/Statement/v1" || st.PredicateType != "https://slsa.dev/provenance/v1" || len(st.Subject) != 4 {
		t.Errorf("provenance: %s %s, %d subjects (want index.json, two manifests and the index):\n%s", st.Type, st.PredicateType, len(st.Subject), pb)
	}
	if bytes.Contains(pb, []byte("2026-")) || bytes.Contains(pb, []byte("startedOn")) {
		t.Errorf("the provenance holds a time:\n%s", pb)
	}
	// skopeo still reads the layout's image by its tag, with the
	// annotations.
	raw := oracleOutput(t, "skopeo", "inspect", "--raw", "oci:"+o("signed-layout")+":greeting:1.0")
	for _, want := range []string{`"org.opencontainers.image.source":"https://example.org/greeting"`, `"org.opencontainers.image.created":`, `"org.opencontainers.image.version":"1.0"`} {
		if !strings.Contains(raw, want) {
			t.Errorf("skopeo inspect --raw: no %s in\n%s", want, raw)
		}
	}
}

// TestSupplyChainPush: a pushed image's signatures and attestations, as
// cosign finds them in a registry, and the SBOM and provenance referrers
// under the fallback tag (the loopback registry has no referrers API).
func TestSupplyChainPush(t *testing.T) {
	oracle.Require(t, "cosign")
	host := oracle.StartRegistry(t).Host
	dir := specDir(t)
	ref := host + "/team/greeting:1.0"
	supplySpec(t, dir, ref)
	ok(t, nil, "push", "-C", dir, "signed-push")
	pub := filepath.Join(dir, "release.pub")
	cosign(t, true, "verify", "--insecure-ignore-tlog", "--allow-insecure-registry", "--key", pub, ref)
	for _, typ := range []string{"spdxjson", "cyclonedx", "slsaprovenance1"} {
		cosign(t, true, "verify-attestation", "--insecure-ignore-tlog", "--allow-insecure-registry", "--key", pub, "--type", typ, ref)
	}
	// Each system's manifest is signed too.
	var idx struct{ Manifests []struct{ Digest string } }
	if err := json.Unmarshal([]byte(oracleOutput(t, "skopeo", "inspect", "--raw", "--tls-verify=false", "docker://"+ref)), &idx); err != nil {
		t.Fatal(err)
	}
	if len(idx.Manifests) != 2 {
		t.Fatalf("the pushed index lists %d manifests", len(idx.Manifests))
	}
	for _, m := range idx.Manifests {
		cosign(t, true, "verify", "--insecure-ignore-tlog", "--allow-insecure-registry", "--key", pub, host+"/team/greeting@"+m.Digest)
	}
	// The referrers fallback tag lists the SBOMs and the provenance: the
	// registry has no referrers API.
	digest := strings.TrimSpace(oracleOutput(t, "skopeo", "inspect", "--format", "{{.Digest}}", "--tls-verify=false", "docker://"+ref))
	resp, err := http.Get("http://" + host + "/v2/team/greeting/referrers/" + digest)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("the registry answers %s to the referrers API; the test expects 404 (no API) and the fallback tag", resp.Status)
	}
	fallback := host + "/team/greeting:" + strings.Replace(digest, ":", "-", 1)
	var refs struct {
		Manifests []struct{ ArtifactType string }
	}
	if err := json.Unmarshal([]byte(oracleOutput(t, "skopeo", "inspect", "--raw", "--tls-verify=false", "docker://"+fallback)), &refs); err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, m := range refs.Manifests {
		types = append(types, m.ArtifactType)
	}
	got := strings.Join(types, " ")
	for _, want := range []string{"application/spdx+json", "application/vnd.cyclonedx+json", "application/vnd.in-toto+json", "application/vnd.dev.cosign.artifact.sig.v1+json"} {
		if !strings.Contains(got, want) {
			t.Errorf("the referrers fallback tag lists %q, want %s among them", got, want)
		}
	}
}

// oracleOutput runs a real tool and returns its standard output.
func oracleOutput(t *testing.T, tool string, args ...string) string {
	t.Helper()
	out, err := exec.Command(oracle.Require(t, tool), args...).Output()
	if err != nil {
		t.Fatalf("%s %s: %v", tool, strings.Join(args, " "), err)
	}
	return string(out)
}

// TestSupplyChainKeys: an ECDSA P-256 key and a key of cosign's own
// (encrypted, its password in COSIGN_PASSWORD) sign what cosign accepts;
// without the password the export fails, naming the key, and writes
// nothing.
func TestSupplyChainKeys(t *testing.T) {
	oracle.Require(t, "cosign")
	dir := specDir(t)
	ek, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(ek)
	os.WriteFile(filepath.Join(dir, "ec.key"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
	pubDER, _ := x509.MarshalPKIXPublicKey(&ek.PublicKey)
	os.WriteFile(filepath.Join(dir, "ec.pub"), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), 0o644)
	gen := exec.Command(oracle.Require(t, "cosign"), "generate-key-pair", "--output-key-prefix", filepath.Join(dir, "cosign"))
	gen.Env = append(os.Environ(), "COSIGN_PASSWORD=a password")
	if b, err := gen.CombinedOutput(); err != nil {
		t.Fatalf("cosign generate-key-pair: %v\n%s", err, b)
	}
	spec := ""
	for _, k := range []string{"ec", "cosign"} {
		spec += `
export "` + k + `" {
  format   = "tarball"
  paths    = [source.app.store_path]
  systems  = ["x86_64-linux"]
  sbom     = ["spdx"]
  sign_key = "` + k + `.key"
}
`
	}
	os.WriteFile(filepath.Join(dir, "keys.hcl"), []byte(spec), 0o644)

	out := filepath.Join(t.TempDir(), "out")
	r := storepack(t, nil, "export", "-q", "-C", dir, "--out", out, "cosign")
	if r.code != 1 || !strings.Contains(string(r.stderr), filepath.Join(dir, "cosign.key")) || !strings.Contains(string(r.stderr), "COSIGN_PASSWORD") {
		t.Errorf("export with an encrypted key and no password: exit %d\n%s", r.code, r.stderr)
	}
	if _, err := os.Stat(out); err == nil {
		if entries, _ := os.ReadDir(out); len(entries) > 0 {
			t.Errorf("a failed export wrote %v", entries)
		}
	}
	t.Setenv("COSIGN_PASSWORD", "a password")
	ok(t, nil, "export", "-q", "-C", dir, "--out", out, "ec", "cosign")
	for _, k := range []string{"ec", "cosign"} {
		for _, f := range []string{k + ".tar.gz", k + ".tar.gz.spdx.json"} {
			cosign(t, true, "verify-blob", "--insecure-ignore-tlog", "--key", filepath.Join(dir, k+".pub"), "--signature", filepath.Join(out, f+".sig"), filepath.Join(out, f))
		}
	}
	// ECDSA signatures differ from run to run: the lock leaves them out,
	// and verify passes; the outputs and SBOMs are locked.
	ok(t, nil, "lock", "-C", dir)
	ok(t, nil, "verify", "-C", dir)
	lock, err := os.ReadFile(filepath.Join(dir, "storepack.lock"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(lock, []byte(`ec.tar.gz.sig"`)) || !bytes.Contains(lock, []byte(`ec.tar.gz.spdx.json"`)) {
		t.Errorf("the lock file should hold ec.tar.gz.spdx.json and no ECDSA signature:\n%s", lock)
	}
}
