package attest

import (
	"encoding/base64"
	"fmt"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/sigstore/sigstore/pkg/signature/payload"

	"github.com/storepack/storepack/export/image"
	"github.com/storepack/storepack/internal/signing"
)

// Media types and annotations of cosign's signatures and attestations.
const (
	SimpleSigningMediaType = "application/vnd.dev.cosign.simplesigning.v1+json"
	DSSEMediaType          = "application/vnd.dsse.envelope.v1+json"
	SignatureAnnotation    = "dev.cosignproject.cosign/signature"
	PredicateAnnotation    = "predicateType"
)

// Artifact types of the referrers an image carries: its SBOMs and its
// provenance, as OCI 1.1 artifacts whose subject is the image.
const (
	SPDXArtifactType       = "application/spdx+json"
	CycloneDXArtifactType  = "application/vnd.cyclonedx+json"
	ProvenanceArtifactType = "application/vnd.in-toto+json"
)

// Blob is one blob of an Artifact.
type Blob struct {
	Digest digest.Digest
	Data   []byte
}

// Artifact is a small OCI manifest with its blobs (config and layers):
// cosign's signature and attestation images, and referrers.
type Artifact struct {
	// Manifest is the manifest's JSON; Descriptor describes it.
	Manifest   []byte
	Descriptor ocispec.Descriptor
	Blobs      []Blob
}

// newArtifact builds the manifest of config and layers (with their data),
// as OCI image manifest; subject and artifactType are optional.
func newArtifact(config ocispec.Descriptor, configData []byte, layers []ocispec.Descriptor, data [][]byte, subject *ocispec.Descriptor, artifactType string) (*Artifact, error) {
	m := ocispec.Manifest{
		Versioned:    specs.Versioned{SchemaVersion: 2},
		MediaType:    ocispec.MediaTypeImageManifest,
		ArtifactType: artifactType,
		Config:       config,
		Layers:       layers,
		Subject:      subject,
	}
	b, err := image.Marshal(m)
	if err != nil {
		return nil, err
	}
	a := &Artifact{Manifest: b, Descriptor: ocispec.Descriptor{
		MediaType: ocispec.MediaTypeImageManifest, ArtifactType: artifactType,
		Digest: digest.FromBytes(b), Size: int64(len(b)),
	}}
	a.Blobs = append(a.Blobs, Blob{config.Digest, configData})
	for i, l := range layers {
		a.Blobs = append(a.Blobs, Blob{l.Digest, data[i]})
	}
	return a, nil
}

// cosignImage is a cosign signature or attestation image: one layer per
// blob, and the config cosign writes for them (no platform, the layers as
// diff ids).
func cosignImage(mediaType string, data [][]byte, annotations []map[string]string) (*Artifact, error) {
	var layers []ocispec.Descriptor
	var diffIDs []string
	for i, d := range data {
		dg := digest.FromBytes(d)
		layers = append(layers, ocispec.Descriptor{MediaType: mediaType, Digest: dg, Size: int64(len(d)), Annotations: annotations[i]})
		diffIDs = append(diffIDs, `"`+dg.String()+`"`)
	}
	config := []byte(`{"architecture":"","created":"0001-01-01T00:00:00Z","history":[{"created":"0001-01-01T00:00:00Z"}],"os":"","rootfs":{"type":"layers","diff_ids":[` +
		strings.Join(diffIDs, ",") + `]},"config":{}}`)
	cd := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: digest.FromBytes(config), Size: int64(len(config))}
	return newArtifact(cd, config, layers, data, nil, "")
}

// Signed is one image manifest to sign: its repository (without tag) and
// digest.
type Signed struct {
	Repository string
	Digest     digest.Digest
}

// Signature is cosign's simple signing payload naming one image and the
// annotation carrying its signature: what a signature image's layer and a
// signature referrer hold.
type Signature struct {
	Payload     []byte
	Annotations map[string]string
}

// Sign makes t's signature with k.
func Sign(t Signed, k *signing.Key) (Signature, error) {
	ref, err := name.NewDigest(t.Repository+"@"+t.Digest.String(), name.WeakValidation)
	if err != nil {
		return Signature{}, fmt.Errorf("signature of %s@%s: %w", t.Repository, t.Digest, err)
	}
	p, err := payload.Cosign{Image: ref}.MarshalJSON()
	if err != nil {
		return Signature{}, err
	}
	sig, err := k.Sign(p)
	if err != nil {
		return Signature{}, fmt.Errorf("sign %s: %w", ref, err)
	}
	return Signature{Payload: p, Annotations: map[string]string{SignatureAnnotation: base64.StdEncoding.EncodeToString(sig)}}, nil
}

// SignatureImage is the cosign signature image of sigs, a layer each:
// `cosign verify --key` accepts it under the tag SignatureTag gives, or in
// a layout as SignatureKind.
func SignatureImage(sigs ...Signature) (*Artifact, error) {
	var data [][]byte
	var anns []map[string]string
	for _, s := range sigs {
		data = append(data, s.Payload)
		anns = append(anns, s.Annotations)
	}
	return cosignImage(SimpleSigningMediaType, data, anns)
}

// Attestation is one signed statement for AttestationImage.
type Attestation struct {
	PredicateType string
	// Envelope is the DSSE envelope of the statement (Envelope).
	Envelope []byte
}

// AttestationImage is the cosign attestation image holding atts: what
// `cosign verify-attestation --key --type T` reads under the tag
// AttestationTag gives, or in a layout as AttestationKind.
func AttestationImage(atts []Attestation) (*Artifact, error) {
	var data [][]byte
	var anns []map[string]string
	for _, a := range atts {
		data = append(data, a.Envelope)
		anns = append(anns, map[string]string{SignatureAnnotation: "", PredicateAnnotation: a.PredicateType})
	}
	return cosignImage(DSSEMediaType, data, anns)
}

// SignatureArtifactType is the artifact type of cosign's signatures as
// OCI 1.1 referrers.
const SignatureArtifactType = "application/vnd.dev.cosign.artifact.sig.v1+json"

// Referrer is an OCI 1.1 artifact of type artifactType holding data, whose
// subject is the image (or index) subject.
func Referrer(subject ocispec.Descriptor, artifactType string, data []byte, annotations map[string]string) (*Artifact, error) {
	return referrer(subject, artifactType, artifactType, data, annotations)
}

// SignatureReferrer is sig, the signature of subject, as an OCI 1.1
// referrer: the payload as its layer, the signature in the layer's
// annotation, as cosign's own referrers hold it.
func SignatureReferrer(subject ocispec.Descriptor, sig Signature) (*Artifact, error) {
	return referrer(subject, SignatureArtifactType, SimpleSigningMediaType, sig.Payload, sig.Annotations)
}

func referrer(subject ocispec.Descriptor, artifactType, layerType string, data []byte, annotations map[string]string) (*Artifact, error) {
	empty := []byte("{}")
	cd := ocispec.Descriptor{MediaType: ocispec.MediaTypeEmptyJSON, Digest: digest.FromBytes(empty), Size: int64(len(empty))}
	layer := ocispec.Descriptor{MediaType: layerType, Digest: digest.FromBytes(data), Size: int64(len(data)), Annotations: annotations}
	sub := ocispec.Descriptor{MediaType: subject.MediaType, Digest: subject.Digest, Size: subject.Size}
	return newArtifact(cd, empty, []ocispec.Descriptor{layer}, [][]byte{data}, &sub, artifactType)
}

// FallbackTag is the tag that lists the referrers of the manifest or index
// d where no referrers API answers (OCI distribution-spec 1.1's referrers
// tag schema): sha256-<hex>. Layouts carry it too, for the tools that
// find referrers by tag (regctl).
func FallbackTag(d digest.Digest) string { return d.Algorithm().String() + "-" + d.Encoded() }

// ReferrersIndex is the image index that FallbackTag names: the
// descriptors of the referrers, with their artifact types, in order.
func ReferrersIndex(referrers []*Artifact) ([]byte, error) {
	idx := ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{}}
	for _, r := range referrers {
		idx.Manifests = append(idx.Manifests, r.Descriptor)
	}
	return image.Marshal(idx)
}

// SignatureTag and AttestationTag are the tags cosign looks for an image's
// signatures and attestations under: sha256-<hex>.sig and .att.
func SignatureTag(d digest.Digest) string { return d.Algorithm().String() + "-" + d.Encoded() + ".sig" }
func AttestationTag(d digest.Digest) string {
	return d.Algorithm().String() + "-" + d.Encoded() + ".att"
}

// The "kind" annotations of cosign's local layouts (`cosign save`), which
// `cosign verify --local-image` and `verify-attestation --local-image`
// read: the signed image or index, its signatures and its attestations.
const (
	KindAnnotation  = "kind"
	ImageKind       = "dev.cosignproject.cosign/image"
	IndexKind       = "dev.cosignproject.cosign/imageIndex"
	SignatureKind   = "dev.cosignproject.cosign/sigs"
	AttestationKind = "dev.cosignproject.cosign/atts"
)
