package spec_test

import (
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strings"

	"github.com/hashicorp/hcl/v2/hclparse"

	"github.com/storepack/storepack/spec"
)

// Loading a spec folder and printing its diagnostics as the storepack
// command does: every problem, with its file, line and column.
func ExampleLoad() {
	dir, err := os.MkdirTemp("", "spec-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	text := `export "hello" {
  format  = "tarbal"
  paths   = []
  systems = ["x86_64-linux"]
}
`
	if err := os.WriteFile(filepath.Join(dir, "storepack.hcl"), []byte(text), 0o644); err != nil {
		log.Fatal(err)
	}
	parser := hclparse.NewParser()
	sp, diags := spec.Load(spec.LoadOptions{Dir: dir, Parser: parser})
	fmt.Println("loaded:", sp != nil)
	out := spec.FormatDiagnostics(parser.Files(), diags)
	fmt.Print(strings.ReplaceAll(out, dir, "DIR"))
	// Output:
	// loaded: false
	// Error: Unknown format
	//
	//   on DIR/storepack.hcl:2:13, in export "hello":
	//      2 |   format  = "tarbal"
	//        |             ^^^^^^^^
	// The format "tarbal" is not one of "nar", "docker", "oci", "binary-cache", "tarball", "deb", "rpm", "squashfs", "appimage".
}
