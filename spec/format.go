package spec

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/hashicorp/hcl/v2/hclwrite"

	"github.com/storepack/storepack/internal/atomicfile"
	"github.com/storepack/storepack/internal/bounded"
)

// Format rewrites each of files (or, when files is empty, every *.hcl file
// of dir) in HCL's canonical layout, as `packer fmt` does. With check it
// writes nothing. It returns the files whose layout differs. A file with
// syntax errors is not touched: its diagnostics are returned.
func Format(dir string, files []string, check bool) ([]string, hcl.Diagnostics, error) {
	if len(files) == 0 {
		matches, err := filepath.Glob(filepath.Join(dir, "*.hcl"))
		if err != nil {
			return nil, nil, err
		}
		for _, m := range matches {
			if !strings.HasPrefix(filepath.Base(m), ".") {
				files = append(files, m)
			}
		}
		sort.Strings(files)
	}
	var changed []string
	var diags hcl.Diagnostics
	for _, f := range files {
		src, err := bounded.ReadFile(f, bounded.SpecFile)
		if err != nil {
			return changed, diags, err
		}
		if _, d := hclsyntax.ParseConfig(src, f, hcl.InitialPos); d.HasErrors() {
			diags = append(diags, d...)
			continue
		}
		out := hclwrite.Format(src)
		if bytes.Equal(out, src) {
			continue
		}
		changed = append(changed, f)
		if check {
			continue
		}
		fi, err := os.Stat(f)
		if err != nil {
			return changed, diags, err
		}
		if err := atomicfile.WriteFile(f, out, fi.Mode().Perm()); err != nil {
			return changed, diags, fmt.Errorf("%s: %w", f, err)
		}
	}
	return changed, diags, nil
}
