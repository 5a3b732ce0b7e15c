// Package attest makes what a release's verifiers read besides the
// outputs themselves: in-toto Statements v1 (an SLSA Provenance v1
// predicate, or an SBOM as the predicate), their DSSE envelopes, and the
// image signatures and attestations cosign finds (its simple signing
// payload and the OCI manifests that carry signatures and envelopes).
//
// Statements use in-toto's own types (in-toto/attestation) and are checked
// with their Validate before they are written; protojson's output is made
// canonical (compact, then indented by encoding/json), since protojson
// deliberately varies its whitespace and storepack's outputs are
// reproducible. Envelopes are signed with go-securesystemslib's dsse.
package attest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	ita1 "github.com/in-toto/attestation/go/v1"
	"github.com/opencontainers/go-digest"
	"github.com/secure-systems-lab/go-securesystemslib/dsse"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/storepack/storepack/internal/signing"
)

// Predicate types, as cosign's --type names them: slsaprovenance1,
// spdxjson and cyclonedx.
const (
	ProvenanceType = "https://slsa.dev/provenance/v1"
	SPDXType       = "https://spdx.dev/Document"
	CycloneDXType  = "https://cyclonedx.org/bom"
)

// PayloadType is the DSSE payload type of in-toto statements.
const PayloadType = "application/vnd.in-toto+json"

// Subject is an artifact a statement is about.
type Subject struct {
	Name   string
	Digest digest.Digest
}

// Statement returns the in-toto Statement v1 about subjects with the
// predicate (a JSON object) of type predicateType, as indented JSON.
func Statement(subjects []Subject, predicateType string, predicate []byte) ([]byte, error) {
	pred := &structpb.Struct{}
	if err := protojson.Unmarshal(predicate, pred); err != nil {
		return nil, fmt.Errorf("in-toto predicate: %w", err)
	}
	st := &ita1.Statement{Type: ita1.StatementTypeUri, PredicateType: predicateType, Predicate: pred}
	for _, s := range subjects {
		st.Subject = append(st.Subject, &ita1.ResourceDescriptor{
			Name:   s.Name,
			Digest: map[string]string{string(s.Digest.Algorithm()): s.Digest.Encoded()},
		})
	}
	if err := st.Validate(); err != nil {
		return nil, fmt.Errorf("in-toto statement: %w", err)
	}
	return canonical(st)
}

// canonical is m as protojson gives it, in a fixed form: indented JSON
// with a final newline.
func canonical(m proto.Message) ([]byte, error) {
	b, err := protojson.Marshal(m)
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	if err := json.Indent(&out, b, "", "  "); err != nil {
		return nil, err
	}
	out.WriteByte('\n')
	return out.Bytes(), nil
}

// Compact is JSON b without insignificant white space: the form of DSSE
// payloads and signed blobs carried in images.
func Compact(b []byte) ([]byte, error) {
	var out bytes.Buffer
	if err := json.Compact(&out, b); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// dsseSigner adapts a signing.Key to dsse.Signer.
type dsseSigner struct{ k *signing.Key }

func (s dsseSigner) Sign(_ context.Context, data []byte) ([]byte, error) { return s.k.Sign(data) }
func (s dsseSigner) KeyID() (string, error)                              { return "", nil }

// Envelope signs payload (a statement) with k into a DSSE envelope, as
// JSON: what `cosign verify-attestation` and `cosign
// verify-blob-attestation` check.
func Envelope(payload []byte, k *signing.Key) ([]byte, error) {
	es, err := dsse.NewEnvelopeSigner(dsseSigner{k})
	if err != nil {
		return nil, err
	}
	env, err := es.SignPayload(context.Background(), PayloadType, payload)
	if err != nil {
		return nil, fmt.Errorf("dsse: %w", err)
	}
	return json.Marshal(env)
}
