package sbom

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
	spdxjson "github.com/spdx/tools-golang/json"
	"github.com/spdx/tools-golang/spdx"
	"github.com/spdx/tools-golang/spdxlib"

	"github.com/storepack/storepack/plan"
	"github.com/storepack/storepack/store"
)

// closure is a three-item closure: hello refers to glibc and itself, a
// source item to nothing.
func closure(t *testing.T) Closure {
	t.Helper()
	mk := func(p string, size int64, deriver string, refs ...string) plan.Item {
		it := plan.Item{Path: store.Path(p), NarSize: size, Deriver: deriver}
		copy(it.NarHash[:], p)
		for _, r := range refs {
			it.References = append(it.References, store.Path(r))
		}
		return it
	}
	glibc := "/nix/store/8l1dmqd5kx4hvwy7m7w2zd3a0r0kyrvx-glibc-2.39-52"
	hello := "/nix/store/fv3w4afhjjxq9558jq5kaj3jcj81a8rc-hello-2.12"
	src := "/nix/store/0qpbc4skvz5lmsj6frv0m5hl0nk2ga2x-app"
	items := []plan.Item{
		mk(glibc, 30_000_000, "/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-glibc-2.39-52.drv", glibc),
		mk(hello, 260_000, "/nix/store/bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-hello-2.12.drv", glibc, hello),
		mk(src, 1200, ""),
	}
	items[2].Source = "app"
	return Closure{Name: "hello.tar.gz", Roots: []store.Path{store.Path(hello), store.Path(src)}, Items: items,
		Created: time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC), Tool: "test"}
}

// cdxSchema compiles the CycloneDX JSON schema that cyclonedx-go ships
// (never a copy: read from the module cache).
func cdxSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/CycloneDX/cyclonedx-go").Output()
	if err != nil {
		t.Fatalf("go list the cyclonedx-go module: %v", err)
	}
	dir := filepath.Join(strings.TrimSpace(string(out)), "schema")
	c := jsonschema.NewCompiler()
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no schemas in %s: %v", dir, err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		id, _ := doc.(map[string]any)["$id"].(string)
		if id == "" || strings.Contains(f, "-strict") {
			continue
		}
		if err := c.AddResource(id, doc); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
	}
	s, err := c.Compile("http://cyclonedx.org/schema/bom-1.6.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestCycloneDX(t *testing.T) {
	c := closure(t)
	b, err := Write(CycloneDX, c)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if err := cdxSchema(t).Validate(doc); err != nil {
		t.Fatalf("the CycloneDX document fails its schema: %v\n%s", err, b)
	}
	var bom struct {
		SpecVersion  string `json:"specVersion"`
		SerialNumber string `json:"serialNumber"`
		Metadata     struct {
			Timestamp string `json:"timestamp"`
		} `json:"metadata"`
		Components []struct {
			BOMRef     string `json:"bom-ref"`
			Name       string `json:"name"`
			Version    string `json:"version"`
			Type       string `json:"type"`
			Hashes     []struct{ Alg, Content string }
			Properties []struct{ Name, Value string }
		} `json:"components"`
		Dependencies []struct {
			Ref       string   `json:"ref"`
			DependsOn []string `json:"dependsOn"`
		} `json:"dependencies"`
	}
	if err := json.Unmarshal(b, &bom); err != nil {
		t.Fatal(err)
	}
	if bom.SpecVersion != "1.6" || bom.Metadata.Timestamp != "2024-05-01T12:00:00Z" || !strings.HasPrefix(bom.SerialNumber, "urn:uuid:") {
		t.Errorf("specVersion %q, timestamp %q, serial %q", bom.SpecVersion, bom.Metadata.Timestamp, bom.SerialNumber)
	}
	if len(bom.Components) != 3 {
		t.Fatalf("%d components, want 3", len(bom.Components))
	}
	hello := bom.Components[1]
	props := map[string][]string{}
	for _, p := range hello.Properties {
		props[p.Name] = append(props[p.Name], p.Value)
	}
	it := c.Items[1]
	if hello.Name != "hello" || hello.Version != "2.12" || hello.BOMRef != string(it.Path) ||
		len(hello.Hashes) != 1 || hello.Hashes[0].Alg != "SHA-256" || hello.Hashes[0].Content != it.NarHash.Hex() {
		t.Errorf("hello component: %+v", hello)
	}
	want := map[string][]string{
		"nix:store_path":         {string(it.Path)},
		"nix:narinfo:nar_hash":   {it.NarHash.String()},
		"nix:narinfo:nar_size":   {"260000"},
		"nix:narinfo:deriver":    {it.Deriver},
		"nix:narinfo:references": {string(c.Items[0].Path), string(it.Path)},
	}
	for k, v := range want {
		if strings.Join(props[k], " ") != strings.Join(v, " ") {
			t.Errorf("property %s = %q, want %q", k, props[k], v)
		}
	}
	if bom.Components[2].Type != "file" {
		t.Errorf("the source item is a %q component, want file", bom.Components[2].Type)
	}
	deps := map[string][]string{}
	for _, d := range bom.Dependencies {
		deps[d.Ref] = d.DependsOn
	}
	if len(deps) != 4 {
		t.Errorf("%d dependency entries, want one per component and the document's", len(deps))
	}
	if bytes.Contains(b, []byte("null")) {
		t.Errorf("the document holds a null, which the schema rejects:\n%s", b)
	}
	if got := deps[string(it.Path)]; len(got) != 1 || got[0] != string(c.Items[0].Path) {
		t.Errorf("hello depends on %q, want glibc alone", got)
	}
	if got := deps["storepack:hello.tar.gz"]; len(got) != 2 {
		t.Errorf("the document's component depends on %q, want the two roots", got)
	}
}

func TestSPDX(t *testing.T) {
	c := closure(t)
	b, err := Write(SPDX, c)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := spdxjson.Read(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("spdx/tools-golang cannot read the document: %v\n%s", err, b)
	}
	if err := spdxlib.ValidateDocument(doc); err != nil {
		t.Fatalf("spdxlib: %v", err)
	}
	if doc.SPDXVersion != "SPDX-2.3" || doc.DataLicense != "CC0-1.0" || doc.CreationInfo.Created != "2024-05-01T12:00:00Z" ||
		!strings.HasPrefix(doc.DocumentNamespace, "urn:uuid:") {
		t.Errorf("document header: %s %s %s %s", doc.SPDXVersion, doc.DataLicense, doc.CreationInfo.Created, doc.DocumentNamespace)
	}
	described, err := spdxlib.GetDescribedPackageIDs(doc)
	if err != nil || len(described) != 2 {
		t.Errorf("described packages %v (%v), want the two roots", described, err)
	}
	if len(doc.Packages) != 3 {
		t.Fatalf("%d packages, want 3", len(doc.Packages))
	}
	p := doc.Packages[1]
	it := c.Items[1]
	if p.PackageName != "hello" || p.PackageVersion != "2.12" || p.PackageFileName != string(it.Path) ||
		len(p.PackageChecksums) != 1 || p.PackageChecksums[0].Value != it.NarHash.Hex() ||
		!strings.Contains(p.PackageComment, "nix:narinfo:nar_size=260000") || !strings.Contains(p.PackageComment, "nix:narinfo:deriver="+it.Deriver) {
		t.Errorf("hello package: %+v", p)
	}
	dependsOn := 0
	for _, r := range doc.Relationships {
		if r.Relationship == "DEPENDS_ON" {
			dependsOn++
			if string(r.RefA.ElementRefID) != "Package-"+it.Path.HashPart() || string(r.RefB.ElementRefID) != "Package-"+c.Items[0].Path.HashPart() {
				t.Errorf("unexpected DEPENDS_ON %s -> %s", r.RefA.ElementRefID, r.RefB.ElementRefID)
			}
		}
	}
	if dependsOn != 1 {
		t.Errorf("%d DEPENDS_ON relationships, want 1 (hello on glibc; self references are not dependencies)", dependsOn)
	}
}

// TestReproducible: the same closure gives the same bytes; another
// closure another namespace and serial number.
func TestReproducible(t *testing.T) {
	for _, f := range Formats {
		a, err := Write(f, closure(t))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := Write(f, closure(t))
		if !bytes.Equal(a, b) {
			t.Errorf("%s: two documents of one closure differ", f)
		}
		other := closure(t)
		other.Items = other.Items[:2]
		c, _ := Write(f, other)
		id := func(b []byte) string {
			var d struct {
				NS     string `json:"documentNamespace"`
				Serial string `json:"serialNumber"`
			}
			json.Unmarshal(b, &d)
			return d.NS + d.Serial
		}
		if id(a) == id(c) || id(a) == "" {
			t.Errorf("%s: two closures share the identifier %q", f, id(a))
		}
	}
	if _, err := Write("syft", closure(t)); err == nil {
		t.Error("an unknown format was written")
	}
}

// TestTitle names each format's document, the SPDX version being the one
// written.
func TestTitle(t *testing.T) {
	want := map[Format]string{SPDX: "SPDX 2.3 JSON", CycloneDX: "CycloneDX JSON"}
	for _, f := range Formats {
		if got := f.Title(); got != want[f] {
			t.Errorf("%s: Title() = %q, want %q", f, got, want[f])
		}
	}
	if spdx.Version != "SPDX-2.3" {
		t.Errorf("SPDX documents are %s: change Title", spdx.Version)
	}
}
