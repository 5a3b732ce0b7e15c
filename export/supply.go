package export

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/storepack/storepack/export/attest"
	"github.com/storepack/storepack/export/image"
	"github.com/storepack/storepack/export/sbom"
	"github.com/storepack/storepack/format"
	"github.com/storepack/storepack/internal/signing"
	"github.com/storepack/storepack/internal/version"
	"github.com/storepack/storepack/plan"
)

// chain is the supply chain of one export: what is written beside its
// outputs (SBOMs, the provenance statement, signatures; docs/supply-chain.md)
// and, for OCI layouts and pushes, attached to its images (cosign's
// signature and attestation images, and OCI 1.1 referrers). It reads the
// plan, and is given the image set (image.Set) that an image output
// wrote; it is never written to once made.
type chain struct {
	plan *plan.Plan
	e    *plan.Export
	// key signs (a PEM key); nil for unsigned exports and for binary
	// caches, whose narinfos their writer signs with a Nix key.
	key *signing.Key
}

// newChain reads e's signing key, when it has a PEM one.
func newChain(plan *plan.Plan, e *plan.Export) (*chain, error) {
	c := &chain{plan: plan, e: e}
	if e.SignKey != "" && e.Format.Def().SignKey != format.NixKey {
		k, err := signing.ReadPEMKey(e.SignKey, nil)
		if err != nil {
			return nil, err
		}
		c.key = k
	}
	return c, nil
}

// active reports whether the export asks for anything of the chain.
func (c *chain) active() bool {
	return c != nil && (c.key != nil || len(c.e.SBOM) > 0 || c.e.Provenance)
}

// created is the time SBOMs record: the export's created time (that of
// its images or trees), else plan.DefaultCreated's.
func (c *chain) created() time.Time {
	for _, s := range c.e.Systems {
		switch {
		case s.Image != nil:
			return s.Image.Created
		case s.Tree != nil:
			return s.Tree.Created
		}
	}
	t, _ := time.Parse(time.RFC3339, plan.DefaultCreated)
	return t
}

// sboms returns the export's SBOM documents of sys (every system when
// nil), named name, in the order the spec lists their formats.
func (c *chain) sboms(sys *plan.System, name string) ([]sbomDoc, error) {
	var docs []sbomDoc
	cl := sbom.Of(c.e, sys, name, c.created(), version.Get())
	for _, f := range c.e.SBOM {
		b, err := sbom.Write(sbom.Format(f), cl)
		if err != nil {
			return nil, err
		}
		docs = append(docs, sbomDoc{sbom.Format(f), b})
	}
	return docs, nil
}

// sbomDoc is one SBOM document.
type sbomDoc struct {
	format sbom.Format
	data   []byte
}

// predicateType is the in-toto predicate type of an SBOM format, and
// artifactType its OCI artifact type.
func (d sbomDoc) predicateType() string {
	if d.format == sbom.SPDX {
		return attest.SPDXType
	}
	return attest.CycloneDXType
}

func (d sbomDoc) artifactType() string {
	if d.format == sbom.SPDX {
		return attest.SPDXArtifactType
	}
	return attest.CycloneDXArtifactType
}

// build is what the provenance records the export was made from.
func (c *chain) build() attest.Build {
	b := attest.Build{Export: c.e.Name, SpecFiles: c.plan.SpecFiles, Variables: c.plan.Variables, Tool: version.Get()}
	b.Items = sbom.Of(c.e, nil, c.e.Name, c.created(), "").Items
	return b
}

// imageSubjects are the subjects of the image set s (nil for none): each
// manifest, and the index of several systems, named by their tags
// (image.Set.Named).
func imageSubjects(s *image.Set) []attest.Subject {
	if s == nil {
		return nil
	}
	var subs []attest.Subject
	for _, n := range s.Named() {
		subs = append(subs, attest.Subject{Name: n.Tag, Digest: n.Digest})
	}
	return subs
}

// attachments are the artifacts an image (or index) root carries: with a
// key, cosign's signature image (root signed as repository) and
// attestation image (the SBOMs and provenance as DSSE envelopes of
// statements about root); and OCI 1.1 referrers whose subject is root:
// one per SBOM, the provenance, and with a key the signature.
type attachments struct {
	signatures   *attest.Artifact
	attestations *attest.Artifact
	referrers    []*attest.Artifact
}

// attach builds the attachments of the image set s's root (s.Root()),
// signed for repository; the statements' subjects are the set's manifests
// and index, the root first. It returns nil when the export asks for no
// part of the chain.
func (c *chain) attach(s *image.Set, repository string) (*attachments, error) {
	if !c.active() {
		return nil, nil
	}
	root := s.Root()
	subjects := imageSubjects(s)
	// The root first: the subject cosign checks.
	subjects = append(subjects[len(subjects)-1:], subjects[:len(subjects)-1]...)
	a := &attachments{}
	docs, err := c.sboms(nil, c.e.Name)
	if err != nil {
		return nil, err
	}
	var atts []attest.Attestation
	statement := func(predicateType string, predicate []byte) ([]byte, error) {
		return attest.Statement(subjects, predicateType, predicate)
	}
	for _, d := range docs {
		ref, err := attest.Referrer(root, d.artifactType(), d.data, titled(c.e.Name+d.format.Ext()))
		if err != nil {
			return nil, err
		}
		a.referrers = append(a.referrers, ref)
		if c.key != nil {
			st, err := statement(d.predicateType(), d.data)
			if err != nil {
				return nil, err
			}
			atts = append(atts, attest.Attestation{PredicateType: d.predicateType(), Envelope: nil})
			if atts[len(atts)-1].Envelope, err = c.envelope(st); err != nil {
				return nil, err
			}
		}
	}
	if c.e.Provenance {
		st, err := attest.Provenance(subjects, c.build())
		if err != nil {
			return nil, err
		}
		ref, err := attest.Referrer(root, attest.ProvenanceArtifactType, st, titled(c.e.Name+".intoto.json"))
		if err != nil {
			return nil, err
		}
		a.referrers = append(a.referrers, ref)
		if c.key != nil {
			env, err := c.envelope(st)
			if err != nil {
				return nil, err
			}
			atts = append(atts, attest.Attestation{PredicateType: attest.ProvenanceType, Envelope: env})
		}
	}
	if c.key != nil {
		sig, err := attest.Sign(attest.Signed{Repository: repository, Digest: root.Digest}, c.key)
		if err != nil {
			return nil, err
		}
		if a.signatures, err = attest.SignatureImage(sig); err != nil {
			return nil, err
		}
		ref, err := attest.SignatureReferrer(root, sig)
		if err != nil {
			return nil, err
		}
		a.referrers = append(a.referrers, ref)
		if len(atts) > 0 {
			if a.attestations, err = attest.AttestationImage(atts); err != nil {
				return nil, err
			}
		}
	}
	return a, nil
}

// titled are the annotations of a referrer's layer: its file name, which
// `oras pull` writes it to (org.opencontainers.image.title): the export's
// name and the document's extension, as `storepack export` names the side
// file of a layout named after its export.
func titled(name string) map[string]string {
	return map[string]string{ocispec.AnnotationTitle: name}
}

// envelope signs a statement into a DSSE envelope, compact.
func (c *chain) envelope(statement []byte) ([]byte, error) {
	compact, err := attest.Compact(statement)
	if err != nil {
		return nil, err
	}
	return attest.Envelope(compact, c.key)
}

// sideBase is the name the side files of output f start with: the file,
// or the folder of a format that writes one.
func (c *chain) sideBase(f File) string {
	if strings.HasPrefix(f.Path, c.e.Output+"/") {
		return c.e.Output
	}
	return f.Path
}

// writeFiles writes the side files of the export's outputs files into
// outDir: per output, its SBOMs, its provenance statement and, with a key,
// a signature of the output (files only) and of each side file, as
// `cosign verify-blob` checks them. imgs is the image set the files hold
// (nil for other formats). It returns the files written.
func (c *chain) writeFiles(outDir string, files []File, imgs *image.Set) ([]File, error) {
	if !c.active() {
		return nil, nil
	}
	imgSubjects := imageSubjects(imgs)
	var out []File
	write := func(rel string, data []byte) error {
		f, err := writeAtomic(outDir, rel, func(w io.Writer) error { _, err := w.Write(data); return err })
		if err != nil {
			return err
		}
		f.Export = c.e.Name
		out = append(out, f)
		if c.key != nil {
			sig, err := c.key.Sign(data)
			if err != nil {
				return fmt.Errorf("%s: sign: %w", rel, err)
			}
			return c.writeSig(outDir, rel, sig, &out)
		}
		return nil
	}
	// Outputs in groups of one base: a per-system file, or the export's
	// one output (a folder's files share its base).
	var bases []string
	group := map[string][]File{}
	for _, f := range files {
		b := c.sideBase(f)
		if _, ok := group[b]; !ok {
			bases = append(bases, b)
		}
		group[b] = append(group[b], f)
	}
	for _, base := range bases {
		fs := group[base]
		var sys *plan.System
		if fs[0].System != "" {
			for i := range c.e.Systems {
				if c.e.Systems[i].Name == fs[0].System {
					sys = &c.e.Systems[i]
				}
			}
		}
		docs, err := c.sboms(sys, path.Base(base))
		if err != nil {
			return nil, err
		}
		for _, d := range docs {
			if err := write(base+d.format.Ext(), d.data); err != nil {
				return nil, err
			}
		}
		if c.e.Provenance {
			var subs []attest.Subject
			for _, f := range fs {
				subs = append(subs, attest.Subject{Name: f.Path, Digest: digest.NewDigestFromEncoded(digest.SHA256, f.SHA256)})
			}
			subs = append(subs, imgSubjects...)
			st, err := attest.Provenance(subs, c.build())
			if err != nil {
				return nil, err
			}
			if err := write(base+".intoto.json", st); err != nil {
				return nil, err
			}
		}
		if c.key != nil && base == fs[0].Path {
			sum, err := hex.DecodeString(fs[0].SHA256)
			if err != nil {
				return nil, err
			}
			sig, err := c.key.SignFile(filepath.Join(outDir, filepath.FromSlash(base)), sum)
			if err != nil {
				return nil, fmt.Errorf("%s: sign: %w", base, err)
			}
			if err := c.writeSig(outDir, base, sig, &out); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// writeSig writes rel.sig: the base64 signature, as `cosign sign-blob`
// writes it.
func (c *chain) writeSig(outDir, rel string, sig []byte, out *[]File) error {
	enc := base64.StdEncoding.EncodeToString(sig)
	f, err := writeAtomic(outDir, rel+".sig", func(w io.Writer) error { _, err := w.Write([]byte(enc)); return err })
	if err != nil {
		return err
	}
	f.Export = c.e.Name
	f.Varies = !c.key.Deterministic()
	*out = append(*out, f)
	return nil
}
