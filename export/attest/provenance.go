package attest

import (
	"fmt"
	"sort"

	slsa "github.com/in-toto/attestation/go/predicates/provenance/v1"
	ita1 "github.com/in-toto/attestation/go/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/storepack/storepack/plan"
)

// BuildType is the buildType of storepack's provenance: an export of a
// spec (docs/supply-chain.md says what its parameters are).
const BuildType = "https://github.com/storepack/storepack/blob/main/docs/supply-chain.md#export-v1"

// BuilderID is the builder.id of storepack's provenance.
const BuilderID = "https://github.com/storepack/storepack"

// Build is what an export was made from: the SLSA provenance's
// buildDefinition and runDetails.
type Build struct {
	// Export is the export's name.
	Export string
	// SpecFiles are the spec's files, relative to its folder, with their
	// sha256.
	SpecFiles []plan.SpecFile
	// Variables are the spec's variables, each as JSON.
	Variables map[string]string
	// Items are the store items the export read, each once.
	Items []plan.Item
	// Tool is storepack's version.
	Tool string
}

// Provenance returns the statement that subjects were made by b: an
// in-toto Statement v1 with an SLSA Provenance v1 predicate. It holds no
// time: the same export gives the same bytes.
func Provenance(subjects []Subject, b Build) ([]byte, error) {
	files := make([]any, 0, len(b.SpecFiles))
	for _, f := range b.SpecFiles {
		files = append(files, map[string]any{"path": f.Path, "digest": map[string]any{"sha256": f.SHA256}})
	}
	vars := map[string]any{}
	names := make([]string, 0, len(b.Variables))
	for n := range b.Variables {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		vars[n] = b.Variables[n]
	}
	ext, err := structpb.NewStruct(map[string]any{"export": b.Export, "specFiles": files, "variables": vars})
	if err != nil {
		return nil, fmt.Errorf("provenance: %w", err)
	}
	p := &slsa.Provenance{
		BuildDefinition: &slsa.BuildDefinition{BuildType: BuildType, ExternalParameters: ext},
		RunDetails: &slsa.RunDetails{Builder: &slsa.Builder{
			Id:      BuilderID,
			Version: map[string]string{"storepack": b.Tool},
		}},
	}
	for _, it := range b.Items {
		p.BuildDefinition.ResolvedDependencies = append(p.BuildDefinition.ResolvedDependencies, &ita1.ResourceDescriptor{
			Name:   string(it.Path),
			Digest: map[string]string{"sha256": it.NarHash.Hex()},
		})
	}
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("provenance: %w", err)
	}
	pred, err := protojson.Marshal(p)
	if err != nil {
		return nil, err
	}
	return Statement(subjects, ProvenanceType, pred)
}
