package spec

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

func TestWriteDiagnostics(t *testing.T) {
	src := "export \"x\" {\n\tformat = \"zip\"\n  paths  = [\n    \"a\",\n  ]\n}\n"
	f, diags := hclsyntax.ParseConfig([]byte(src), "x.hcl", hcl.InitialPos)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	files := map[string]*hcl.File{"x.hcl": f}
	rng := func(l1, c1, b1, l2, c2, b2 int) *hcl.Range {
		return &hcl.Range{Filename: "x.hcl", Start: hcl.Pos{Line: l1, Column: c1, Byte: b1}, End: hcl.Pos{Line: l2, Column: c2, Byte: b2}}
	}
	tests := []struct {
		name  string
		diag  *hcl.Diagnostic
		files map[string]*hcl.File
		color bool
		want  string
	}{
		{
			name: "no subject",
			diag: &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Bad thing", Detail: "It is bad."},
			want: "Error: Bad thing\n\nIt is bad.\n\n",
		},
		{
			name: "warning without detail",
			diag: &hcl.Diagnostic{Severity: hcl.DiagWarning, Summary: "Odd thing"},
			want: "Warning: Odd thing\n\n",
		},
		{
			name: "subject after a tab",
			diag: &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Unknown format", Detail: "Not a format.", Subject: rng(2, 11, 23, 2, 16, 28)},
			want: "Error: Unknown format\n\n  on x.hcl:2:11, in export \"x\":\n     2 | \tformat = \"zip\"\n       | \t         ^^^^^\nNot a format.\n\n",
		},
		{
			name: "subject over several lines",
			diag: &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Wrong", Subject: rng(3, 12, 40, 5, 4, 54)},
			want: "Error: Wrong\n\n  on x.hcl:3:12, in export \"x\":\n     3 |   paths  = [\n       |            ^\n     4 |     \"a\",\n       | ^^^^^^^^\n     5 |   ]\n       | ^^^\n\n",
		},
		{
			name: "context widens the snippet",
			diag: &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Bad path", Subject: rng(4, 5, 46, 4, 8, 49), Context: rng(3, 3, 31, 5, 4, 54)},
			want: "Error: Bad path\n\n  on x.hcl:4:5, in export \"x\":\n     3 |   paths  = [\n     4 |     \"a\",\n       |     ^^^\n     5 |   ]\n\n",
		},
		{
			name: "empty subject",
			diag: &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Missing", Subject: rng(6, 2, 56, 6, 2, 56)},
			want: "Error: Missing\n\n  on x.hcl:6:2:\n     6 | }\n       |  ^\n\n",
		},
		{
			name:  "color",
			diag:  &hcl.Diagnostic{Severity: hcl.DiagWarning, Summary: "Careful", Subject: rng(1, 1, 0, 1, 7, 6)},
			color: true,
			want:  "\x1b[1;33mWarning\x1b[0m: \x1b[1mCareful\x1b[0m\n\n  on x.hcl:1:1, in export \"x\":\n     1 | export \"x\" {\n       | \x1b[1;33m^^^^^^\x1b[0m\n\n",
		},
		{
			name:  "file not available",
			diag:  &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Gone", Subject: &hcl.Range{Filename: "no/such/file.hcl", Start: hcl.Pos{Line: 3, Column: 2}}},
			files: map[string]*hcl.File{},
			want:  "Error: Gone\n\n  on no/such/file.hcl:3:2:\n  (source not available)\n\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := files
			if tt.files != nil {
				fs = tt.files
			}
			var b strings.Builder
			if err := WriteDiagnostics(&b, fs, hcl.Diagnostics{tt.diag}, tt.color); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, b.String()); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// TestWriteDiagnosticsReadsDisk checks that files not given are read from
// disk, with their block context.
func TestWriteDiagnosticsReadsDisk(t *testing.T) {
	p := filepath.Join(t.TempDir(), "a.hcl")
	if err := os.WriteFile(p, []byte("store {\n  dir = 1\n}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	d := &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "S", Detail: "D.",
		Subject: &hcl.Range{Filename: p, Start: hcl.Pos{Line: 2, Column: 9, Byte: 16}, End: hcl.Pos{Line: 2, Column: 10, Byte: 17}}}
	got := FormatDiagnostics(nil, hcl.Diagnostics{d})
	want := "Error: S\n\n  on " + p + ":2:9, in store:\n     2 |   dir = 1\n       |         ^\nD.\n\n"
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}
