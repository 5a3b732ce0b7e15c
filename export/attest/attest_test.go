package attest

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"path/filepath"
	"strings"
	"testing"

	ita1 "github.com/in-toto/attestation/go/v1"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/secure-systems-lab/go-securesystemslib/dsse"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/storepack/storepack/internal/signing"
	"github.com/storepack/storepack/plan"
	"github.com/storepack/storepack/store"
)

func key(t *testing.T) (*signing.Key, ed25519.PublicKey) {
	t.Helper()
	dir := t.TempDir()
	priv, pub := filepath.Join(dir, "k.key"), filepath.Join(dir, "k.pub")
	if err := signing.WritePEMFiles(priv, pub); err != nil {
		t.Fatal(err)
	}
	k, err := signing.ReadPEMKey(priv, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := k.PublicPEM()
	block, _ := pem.Decode(b)
	pk, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return k, pk.(ed25519.PublicKey)
}

var subjects = []Subject{{Name: "app.tar.gz", Digest: digest.FromString("app")}}

func TestProvenance(t *testing.T) {
	it := plan.Item{Path: "/gnu/store/qvzbpnllxraamdsh8qmz8rsp7xrsnj9q-hello-2.12"}
	b := Build{Export: "app", SpecFiles: []plan.SpecFile{{Path: "storepack.hcl", SHA256: strings.Repeat("ab", 32)}},
		Variables: map[string]string{"version": `"1.0"`}, Items: []plan.Item{it}, Tool: "v1.2.3"}
	st, err := Provenance(subjects, b)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := Provenance(subjects, b)
	if !bytes.Equal(st, again) {
		t.Error("two provenance statements of one build differ")
	}
	var s ita1.Statement
	if err := protojson.Unmarshal(st, &s); err != nil {
		t.Fatal(err)
	}
	if err := s.Validate(); err != nil {
		t.Errorf("in-toto: %v", err)
	}
	for _, want := range []string{
		`"predicateType": "https://slsa.dev/provenance/v1"`, `"buildType": "` + BuildType + `"`,
		`"storepack": "v1.2.3"`, `"export": "app"`, `"version": "\"1.0\""`, `"name": "` + string(it.Path) + `"`,
		`"sha256": "` + store.Hash{}.Hex() + `"`,
	} {
		if !bytes.Contains(st, []byte(want)) {
			t.Errorf("no %s in\n%s", want, st)
		}
	}
	for _, time := range []string{"startedOn", "finishedOn", "invocationId"} {
		if bytes.Contains(st, []byte(time)) {
			t.Errorf("the statement holds %s", time)
		}
	}
	if _, err := Statement(nil, ProvenanceType, []byte(`{}`)); err == nil {
		t.Error("a statement without subjects passed validation")
	}
}

func TestEnvelope(t *testing.T) {
	k, pub := key(t)
	st, err := Statement(subjects, SPDXType, []byte(`{"spdxVersion":"SPDX-2.3"}`))
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := Compact(st)
	env, err := Envelope(payload, k)
	if err != nil {
		t.Fatal(err)
	}
	var e dsse.Envelope
	if err := json.Unmarshal(env, &e); err != nil {
		t.Fatal(err)
	}
	v, err := dsse.NewEnvelopeVerifier(verifier{pub})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(context.Background(), &e); err != nil {
		t.Errorf("the envelope does not verify: %v", err)
	}
	e.Payload = base64.StdEncoding.EncodeToString(bytes.Replace(payload, []byte("2.3"), []byte("2.2"), 1))
	if _, err := v.Verify(context.Background(), &e); err == nil {
		t.Error("a changed payload verified")
	}
}

type verifier struct{ pub ed25519.PublicKey }

func (v verifier) Verify(_ context.Context, data, sig []byte) error {
	if !ed25519.Verify(v.pub, data, sig) {
		return errBad
	}
	return nil
}
func (v verifier) KeyID() (string, error)   { return "", nil }
func (v verifier) Public() crypto.PublicKey { return v.pub }

var errBad = &json.UnsupportedValueError{Str: "bad signature"}

func TestSignatureImageAndReferrer(t *testing.T) {
	k, pub := key(t)
	d := digest.FromString("manifest")
	s, err := Sign(Signed{Repository: "127.0.0.1:5000/team/app", Digest: d}, k)
	if err != nil {
		t.Fatal(err)
	}
	a, err := SignatureImage(s)
	if err != nil {
		t.Fatal(err)
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(a.Manifest, &m); err != nil {
		t.Fatal(err)
	}
	if len(m.Layers) != 1 || m.Layers[0].MediaType != SimpleSigningMediaType || len(a.Blobs) != 2 {
		t.Fatalf("signature image: %s", a.Manifest)
	}
	payload := a.Blobs[1].Data
	if !bytes.Contains(payload, []byte(`"docker-manifest-digest":"`+d.String()+`"`)) || !bytes.Contains(payload, []byte(`"docker-reference":"127.0.0.1:5000/team/app"`)) {
		t.Errorf("payload %s", payload)
	}
	sig, _ := base64.StdEncoding.DecodeString(m.Layers[0].Annotations[SignatureAnnotation])
	if !ed25519.Verify(pub, payload, sig) {
		t.Error("the payload's signature does not verify")
	}
	if SignatureTag(d) != "sha256-"+d.Encoded()+".sig" || AttestationTag(d) != "sha256-"+d.Encoded()+".att" {
		t.Errorf("tags %s %s", SignatureTag(d), AttestationTag(d))
	}

	subject := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageIndex, Digest: d, Size: 10}
	sr, err := SignatureReferrer(subject, s)
	if err != nil {
		t.Fatal(err)
	}
	var sm ocispec.Manifest
	json.Unmarshal(sr.Manifest, &sm)
	if sm.ArtifactType != SignatureArtifactType || sm.Layers[0].Annotations[SignatureAnnotation] != m.Layers[0].Annotations[SignatureAnnotation] ||
		sm.Layers[0].Digest != digest.FromBytes(payload) || sm.Subject == nil || sm.Subject.Digest != d {
		t.Errorf("signature referrer %s", sr.Manifest)
	}
	r, err := Referrer(subject, SPDXArtifactType, []byte("{}"), nil)
	if err != nil {
		t.Fatal(err)
	}
	var rm ocispec.Manifest
	json.Unmarshal(r.Manifest, &rm)
	if rm.Subject == nil || rm.Subject.Digest != d || rm.ArtifactType != SPDXArtifactType || rm.Config.MediaType != ocispec.MediaTypeEmptyJSON {
		t.Errorf("referrer manifest %s", r.Manifest)
	}
	if r.Descriptor.Digest != digest.FromBytes(r.Manifest) {
		t.Error("the referrer's descriptor is not its manifest's")
	}
}
