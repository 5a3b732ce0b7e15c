// Package sbom writes software bills of materials of store closures:
// SPDX 2.3 (spdx/tools-golang) and CycloneDX (cyclonedx-go) JSON
// documents with one package or component per store item, named and
// versioned as Nix splits store names, with the item's store path, NAR
// hash and size, deriver and references (the dependency graph). A closure
// knows its contents exactly, so nothing here is guessed from files.
//
// Documents are reproducible: the SPDX namespace and the CycloneDX serial
// number derive from the closure, the times from the export's created
// time, and items and references are in closure order.
package sbom

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	cdx "github.com/CycloneDX/cyclonedx-go"
	"github.com/google/uuid"
	spdxjson "github.com/spdx/tools-golang/json"
	"github.com/spdx/tools-golang/spdx"
	"github.com/spdx/tools-golang/spdx/v2/common"

	"github.com/storepack/storepack/plan"
	"github.com/storepack/storepack/store"
)

// Format is an SBOM format, as a spec's sbom attribute names it.
type Format string

// The formats.
const (
	SPDX      Format = "spdx"
	CycloneDX Format = "cyclonedx"
)

// SpecVersion is the CycloneDX version written: 1.6, the newest whose
// JSON schema ships whole with cyclonedx-go (1.7's refers to a
// cryptography schema the module lacks), so tests validate against it.
const SpecVersion = cdx.SpecVersion1_6

// Formats lists every format, in the order outputs are written.
var Formats = []Format{SPDX, CycloneDX}

// Title names the document a format writes, for messages: "SPDX 2.3
// JSON", "CycloneDX JSON".
func (f Format) Title() string {
	if f == SPDX {
		return "SPDX 2.3 JSON"
	}
	return "CycloneDX JSON"
}

// Ext is the extension a format's document adds to its output's name.
func (f Format) Ext() string {
	if f == SPDX {
		return ".spdx.json"
	}
	return ".cdx.json"
}

// Closure is what an SBOM describes: the store items of one or more
// systems' closures, the roots the spec names and who made it.
type Closure struct {
	// Name names the document: the export's output.
	Name string
	// Roots are the store paths the spec names; Items every item of the
	// closure, dependencies first, each once.
	Roots []store.Path
	Items []plan.Item
	// Created is the export's created time.
	Created time.Time
	// Tool is storepack's version.
	Tool string
}

// Of is the Closure of e's systems (of sys alone when not nil), named name.
func Of(e *plan.Export, sys *plan.System, name string, created time.Time, tool string) Closure {
	c := Closure{Name: name, Created: created.UTC(), Tool: tool}
	systems := e.Systems
	if sys != nil {
		systems = []plan.System{*sys}
	}
	seen := map[store.Path]bool{}
	roots := map[store.Path]bool{}
	for _, s := range systems {
		for _, r := range s.Roots {
			if !roots[r] {
				roots[r] = true
				c.Roots = append(c.Roots, r)
			}
		}
		for _, it := range s.Closure {
			if !seen[it.Path] {
				seen[it.Path] = true
				c.Items = append(c.Items, it)
			}
		}
	}
	sort.Slice(c.Roots, func(i, j int) bool { return c.Roots[i] < c.Roots[j] })
	return c
}

// Write encodes c in format f.
func Write(f Format, c Closure) ([]byte, error) {
	switch f {
	case SPDX:
		return c.spdx()
	case CycloneDX:
		return c.cycloneDX()
	}
	return nil, fmt.Errorf("unknown SBOM format %q (want %s or %s)", f, SPDX, CycloneDX)
}

// digest identifies the closure: the sha256 of the name, each root and
// each item's path and NAR hash.
func (c Closure) digest() [32]byte {
	h := sha256.New()
	fmt.Fprintf(h, "%s\n", c.Name)
	for _, r := range c.Roots {
		fmt.Fprintf(h, "root %s\n", r)
	}
	for _, it := range c.Items {
		fmt.Fprintf(h, "%s %s\n", it.Path, it.NarHash)
	}
	var d [32]byte
	h.Sum(d[:0])
	return d
}

// uuid is a name-based (version 5) UUID of the closure.
func (c Closure) uuid() uuid.UUID {
	d := c.digest()
	return uuid.NewSHA1(uuid.NameSpaceURL, []byte("storepack:closure:"+fmt.Sprintf("%x", d)))
}

func (c Closure) created() string { return c.Created.Format(time.RFC3339) }

// spdxID is an item's SPDX identifier.
func spdxID(p store.Path) common.ElementID { return common.ElementID("Package-" + p.HashPart()) }

// facts are what an item's comment and properties record beyond its name.
func facts(it plan.Item) []cdx.Property {
	props := []cdx.Property{
		{Name: "nix:store_path", Value: string(it.Path)},
		{Name: "nix:narinfo:nar_hash", Value: it.NarHash.String()},
		{Name: "nix:narinfo:nar_size", Value: strconv.FormatInt(it.NarSize, 10)},
	}
	if it.Deriver != "" {
		props = append(props, cdx.Property{Name: "nix:narinfo:deriver", Value: it.Deriver})
	}
	for _, r := range it.References {
		props = append(props, cdx.Property{Name: "nix:narinfo:references", Value: string(r)})
	}
	if it.Source != "" {
		props = append(props, cdx.Property{Name: "storepack:source", Value: it.Source})
	}
	return props
}

func (c Closure) spdx() ([]byte, error) {
	doc := &spdx.Document{
		SPDXVersion:       spdx.Version,
		DataLicense:       spdx.DataLicense,
		SPDXIdentifier:    "DOCUMENT",
		DocumentName:      c.Name,
		DocumentNamespace: "urn:uuid:" + c.uuid().String(),
		CreationInfo: &spdx.CreationInfo{
			Creators: []common.Creator{{CreatorType: "Tool", Creator: "storepack-" + c.Tool}},
			Created:  c.created(),
		},
	}
	for _, it := range c.Items {
		name, version := store.SplitName(it.Path.Name())
		var comment strings.Builder
		for _, p := range facts(it) {
			fmt.Fprintf(&comment, "%s=%s\n", p.Name, p.Value)
		}
		pkg := &spdx.Package{
			PackageName:             name,
			PackageSPDXIdentifier:   spdxID(it.Path),
			PackageVersion:          version,
			PackageFileName:         string(it.Path),
			PackageDownloadLocation: "NOASSERTION",
			FilesAnalyzed:           false,
			PackageChecksums:        []common.Checksum{{Algorithm: common.SHA256, Value: it.NarHash.Hex()}},
			PackageLicenseConcluded: "NOASSERTION",
			PackageLicenseDeclared:  "NOASSERTION",
			PackageCopyrightText:    "NOASSERTION",
			PackageComment:          strings.TrimSuffix(comment.String(), "\n"),
			PrimaryPackagePurpose:   "LIBRARY",
		}
		if it.Source != "" {
			pkg.PrimaryPackagePurpose = "SOURCE"
		}
		doc.Packages = append(doc.Packages, pkg)
	}
	for _, r := range c.Roots {
		doc.Relationships = append(doc.Relationships, &spdx.Relationship{
			RefA:         common.MakeDocElementID("", "DOCUMENT"),
			RefB:         common.MakeDocElementID("", string(spdxID(r))),
			Relationship: common.TypeRelationshipDescribe,
		})
	}
	for _, it := range c.Items {
		for _, r := range it.References {
			if r == it.Path {
				continue
			}
			doc.Relationships = append(doc.Relationships, &spdx.Relationship{
				RefA:         common.MakeDocElementID("", string(spdxID(it.Path))),
				RefB:         common.MakeDocElementID("", string(spdxID(r))),
				Relationship: common.TypeRelationshipDependsOn,
			})
		}
	}
	var b bytes.Buffer
	if err := spdxjson.Write(doc, &b, spdxjson.Indent("  ")); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func (c Closure) cycloneDX() ([]byte, error) {
	bom := cdx.NewBOM()
	bom.SerialNumber = "urn:uuid:" + c.uuid().String()
	tool := cdx.Component{Type: cdx.ComponentTypeApplication, Name: "storepack", Version: c.Tool}
	bom.Metadata = &cdx.Metadata{
		Timestamp: c.created(),
		Tools:     &cdx.ToolsChoice{Components: &[]cdx.Component{tool}},
		Component: &cdx.Component{Type: cdx.ComponentTypeApplication, BOMRef: "storepack:" + c.Name, Name: c.Name},
	}
	var comps []cdx.Component
	var deps []cdx.Dependency
	rootDeps := []string{}
	for _, r := range c.Roots {
		rootDeps = append(rootDeps, string(r))
	}
	deps = append(deps, cdx.Dependency{Ref: bom.Metadata.Component.BOMRef, Dependencies: &rootDeps})
	for _, it := range c.Items {
		name, version := store.SplitName(it.Path.Name())
		props := facts(it)
		comp := cdx.Component{
			Type:       cdx.ComponentTypeLibrary,
			BOMRef:     string(it.Path),
			Name:       name,
			Version:    version,
			Hashes:     &[]cdx.Hash{{Algorithm: cdx.HashAlgoSHA256, Value: it.NarHash.Hex()}},
			Properties: &props,
		}
		if it.Source != "" {
			comp.Type = cdx.ComponentTypeFile
		}
		comps = append(comps, comp)
		on := []string{}
		for _, r := range it.References {
			if r != it.Path {
				on = append(on, string(r))
			}
		}
		deps = append(deps, cdx.Dependency{Ref: string(it.Path), Dependencies: &on})
	}
	bom.Components = &comps
	bom.Dependencies = &deps
	var b bytes.Buffer
	enc := cdx.NewBOMEncoder(&b, cdx.BOMFileFormatJSON)
	enc.SetPretty(true)
	if err := enc.EncodeVersion(bom, SpecVersion); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
