package spec

import (
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"

	"github.com/storepack/storepack/format"
	"github.com/storepack/storepack/plan"
	"github.com/storepack/storepack/store"
)

// helloBase is an item of the fake store in testdata/store.
const helloBase = "fv3w4afhjjxq9558jq5kaj3jcj81a8rc-hello-2.12"

// loadText writes files (name -> text) into a fresh folder and loads it
// with env (plus NIX_STORE_DIR at the fake store) and vars. It returns the
// spec, the diagnostics as text, and the folder.
func loadText(t *testing.T, files map[string]string, env, vars map[string]string) (*Spec, string, string) {
	t.Helper()
	dir := t.TempDir()
	for name, text := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	parser := hclparse.NewParser()
	sp, diags := Load(LoadOptions{Dir: dir, Env: testEnv(t, env), Vars: vars, System: "x86_64-linux", Parser: parser})
	return sp, FormatDiagnostics(parser.Files(), diags), dir
}

// labelSpec is a spec whose image has the label v = expr, with extra
// blocks around it.
func labelSpec(expr, extra string) string {
	return extra + `
export "t" {
  format = "docker"
  paths  = ["${env("NIX_STORE_DIR")}/` + helloBase + `"]
  labels = { v = ` + expr + ` }
}
`
}

// TestExpressions evaluates expressions (functions, variables, locals)
// through a label and compares the label's value.
func TestExpressions(t *testing.T) {
	tests := []struct {
		name  string
		expr  string
		extra string            // more blocks
		env   map[string]string // environment besides NIX_STORE_DIR
		vars  map[string]string // --var values
		files map[string]string // more files in the spec folder
		want  string
	}{
		{name: "upper", expr: `upper("hello")`, want: "HELLO"},
		{name: "lower", expr: `lower("HeLLo")`, want: "hello"},
		{name: "format", expr: `format("%s-%03d", "v", 7)`, want: "v-007"},
		{name: "formatlist", expr: `join(",", formatlist("%s!", ["a", "b"]))`, want: "a!,b!"},
		{name: "join split", expr: `join("+", split(".", "1.2.3"))`, want: "1+2+3"},
		{name: "concat", expr: `jsonencode(concat(["a"], ["b", "c"]))`, want: `["a","b","c"]`},
		{name: "merge", expr: `jsonencode(merge({ a = 1 }, { b = 2 }, { a = 3 }))`, want: `{"a":3,"b":2}`},
		{name: "replace", expr: `replace("a-b-c", "-", "_")`, want: "a_b_c"},
		{name: "replace regex", expr: `replace("v1.2.3", "/[0-9]/", "N")`, want: "vN.N.N"},
		{name: "trimprefix", expr: `trimprefix("v1.2", "v")`, want: "1.2"},
		{name: "trimsuffix", expr: `trimsuffix("hello.tar", ".tar")`, want: "hello"},
		{name: "trimspace", expr: `trimspace("  x \n")`, want: "x"},
		{name: "jsondecode", expr: `jsondecode("{\"a\": \"b\"}").a`, want: "b"},
		{name: "length", expr: `tostring(length([1, 2, 3]))`, want: "3"},
		{name: "contains", expr: `tostring(contains(["a", "b"], "b"))`, want: "true"},
		{name: "keys values", expr: `jsonencode([keys({ b = 1, a = 2 }), values({ b = 1, a = 2 })])`, want: `[["a","b"],[2,1]]`},
		{name: "lookup", expr: `lookup({ a = "x" }, "b", "default")`, want: "default"},
		{name: "element", expr: `element(["a", "b", "c"], 4)`, want: "b"},
		{name: "flatten", expr: `jsonencode(flatten([["a"], ["b", ["c"]]]))`, want: `["a","b","c"]`},
		{name: "distinct", expr: `jsonencode(distinct(["a", "b", "a"]))`, want: `["a","b"]`},
		{name: "coalesce", expr: `coalesce(null, "x")`, want: "x"},
		{name: "range", expr: `jsonencode(range(3))`, want: `[0,1,2]`},
		{name: "min max abs", expr: `format("%d %d %d", min(3, 1), max(3, 1), abs(-4))`, want: "1 3 4"},
		{name: "tonumber tobool", expr: `tostring(tonumber("12") + 1 == 13 && tobool("true"))`, want: "true"},
		{name: "regex", expr: `regex("[0-9]+", "hello-2.12")`, want: "2"},
		{name: "regexall", expr: `jsonencode(regexall("[0-9]+", "hello-2.12"))`, want: `["2","12"]`},
		{name: "substr", expr: `substr("storepack", 0, 5)`, want: "store"},
		{name: "reverse sort", expr: `jsonencode(reverse(sort(["b", "c", "a"])))`, want: `["c","b","a"]`},
		{name: "slice", expr: `jsonencode(slice(["a", "b", "c"], 1, 3))`, want: `["b","c"]`},
		{name: "zipmap", expr: `jsonencode(zipmap(["a", "b"], [1, 2]))`, want: `{"a":1,"b":2}`},
		{name: "setunion", expr: `jsonencode(sort(setunion(["a"], ["b", "a"])))`, want: `["a","b"]`},
		{name: "try", expr: `try(local.m.missing, "fallback")`, extra: "locals {\n  m = {}\n}\n", want: "fallback"},
		{name: "for expression", expr: `join(",", [for s in ["a", "b"] : upper(s)])`, want: "A,B"},
		{name: "conditional", expr: `1 < 2 ? "yes" : "no"`, want: "yes"},
		{name: "env set", expr: `env("GREETING")`, env: map[string]string{"GREETING": "hi"}, want: "hi"},
		{name: "env unset", expr: `"[${env("NOT_SET_ANYWHERE")}]"`, want: "[]"},
		{name: "file", expr: `trimspace(file("VERSION"))`, files: map[string]string{"VERSION": "1.2.3\n"}, want: "1.2.3"},
		{name: "file in subfolder", expr: `file("conf/a.txt")`, files: map[string]string{"conf/a.txt": "a"}, want: "a"},
		{name: "variable default", expr: `var.v`, extra: "variable \"v\" {\n  default = \"default\"\n}\n", want: "default"},
		{name: "variable from env", expr: `var.v`, extra: "variable \"v\" {\n  default = \"default\"\n}\n",
			env: map[string]string{"STOREPACK_VAR_v": "env"}, want: "env"},
		{name: "variable from flag over env", expr: `var.v`, extra: "variable \"v\" {\n  default = \"default\"\n}\n",
			env: map[string]string{"STOREPACK_VAR_v": "env"}, vars: map[string]string{"v": "flag"}, want: "flag"},
		{name: "number variable from env", expr: `tostring(var.n * 2)`, extra: "variable \"n\" {\n  type = number\n  default = 1\n}\n",
			env: map[string]string{"STOREPACK_VAR_n": "21"}, want: "42"},
		{name: "string variable raw", expr: `var.s`, extra: "variable \"s\" {\n  type = string\n}\n",
			env: map[string]string{"STOREPACK_VAR_s": `["not", "a list"]`}, want: `["not", "a list"]`},
		{name: "list variable parsed", expr: `join("|", var.l)`, extra: "variable \"l\" {\n  type = list(string)\n}\n",
			vars: map[string]string{"l": `["a", "b"]`}, want: "a|b"},
		{name: "map variable parsed", expr: `var.m.k`, extra: "variable \"m\" {\n  type = map(string)\n}\n",
			env: map[string]string{"STOREPACK_VAR_m": `{ k = "v" }`}, want: "v"},
		{name: "any variable parsed", expr: `jsonencode(var.a)`, extra: "variable \"a\" {\n  type = any\n}\n",
			vars: map[string]string{"a": `{ x = [1] }`}, want: `{"x":[1]}`},
		{name: "untyped variable raw", expr: `var.u`, extra: "variable \"u\" {}\n",
			vars: map[string]string{"u": `1.0`}, want: "1.0"},
		{name: "locals in any order", expr: `local.c`, extra: "locals {\n  c = \"${local.b}c\"\n}\nlocals {\n  b = \"${local.a}b\"\n  a = \"a\"\n}\n", want: "abc"},
		{name: "local from variable", expr: `local.l`, extra: "variable \"v\" {\n  default = \"x\"\n}\nlocals {\n  l = upper(var.v)\n}\n", want: "X"},
		{name: "local in other file", expr: `local.other`, files: map[string]string{"other.hcl": "locals {\n  other = \"from another file\"\n}\n"}, want: "from another file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files := map[string]string{"storepack.hcl": labelSpec(tt.expr, tt.extra)}
			for k, v := range tt.files {
				files[k] = v
			}
			sp, diags, _ := loadText(t, files, tt.env, tt.vars)
			if sp == nil {
				t.Fatalf("Load failed:\n%s", diags)
			}
			if got := sp.Exports[0].Image.Labels["v"]; got != tt.want {
				t.Errorf("%s = %q, want %q", tt.expr, got, tt.want)
			}
		})
	}
}

// TestDiagnostics checks the summary and position of the diagnostic each
// mistake gives, and that each gives exactly one error.
func TestDiagnostics(t *testing.T) {
	hello := `"${env("NIX_STORE_DIR")}/` + helloBase + `"`
	tests := []struct {
		name    string
		text    string
		env     map[string]string
		vars    map[string]string
		summary string
		at      string // file:line:column, "" for none
	}{
		{"unknown block", "bundle \"x\" {}\n", nil, nil, "Unsupported block type", "storepack.hcl:1:1"},
		{"unknown attribute", "export \"x\" {\n  format = \"nar\"\n  paths = [" + hello + "]\n  colour = 1\n}\n", nil, nil, "Unsupported argument", "storepack.hcl:4:3"},
		{"missing format", "export \"x\" {\n  paths = [" + hello + "]\n}\n", nil, nil, "Missing required argument", "storepack.hcl:1:12"},
		{"null format", "export \"x\" {\n  format = null\n  paths = [" + hello + "]\n}\n", nil, nil, "Missing format", "storepack.hcl:2:12"},
		{"wrong type", "export \"x\" {\n  format = \"nar\"\n  paths = " + hello + "\n}\n", nil, nil, "Incorrect attribute value type", "storepack.hcl:3:11"},
		{"unknown format", "export \"x\" {\n  format = \"zip\"\n  paths = [" + hello + "]\n}\n", nil, nil, "Unknown format", "storepack.hcl:2:12"},
		{"unknown system", "export \"x\" {\n  format = \"nar\"\n  paths = [" + hello + "]\n  systems = [\"x86_64-darwin\"]\n}\n", nil, nil, "Unknown system", "storepack.hcl:4:14"},
		{"empty systems", "export \"x\" {\n  format = \"nar\"\n  paths = [" + hello + "]\n  systems = []\n}\n", nil, nil, "No systems", "storepack.hcl:4:13"},
		{"outside store", "export \"x\" {\n  format = \"nar\"\n  paths = [\"/usr/bin\"]\n}\n", nil, nil, "Path outside the store", "storepack.hcl:3:12"},
		{"missing from store", "export \"x\" {\n  format = \"nar\"\n  paths = [\"${env(\"NIX_STORE_DIR\")}/rdb2yvc2ji2yb2lyq5zn3ahzqcb50sfp-gone\"]\n}\n", nil, nil, "Store path not found", "storepack.hcl:3:12"},
		{"inside item", "export \"x\" {\n  format = \"nar\"\n  paths = [\"${env(\"NIX_STORE_DIR\")}/" + helloBase + "/bin\"]\n}\n", nil, nil, "Not a store item", "storepack.hcl:3:12"},
		{"duplicate export", "export \"x\" {\n  format = \"nar\"\n  paths = [" + hello + "]\n}\nexport \"x\" {\n  format = \"nar\"\n  paths = [" + hello + "]\n}\n", nil, nil, "Duplicate export", "storepack.hcl:5:8"},
		{"duplicate output", "export \"x\" {\n  format = \"nar\"\n  paths = [" + hello + "]\n}\nexport \"y\" {\n  format = \"nar\"\n  paths = [" + hello + "]\n  output = \"x.nar\"\n}\n", nil, nil, "Duplicate output", "storepack.hcl:8:12"},
		{"default outputs collide", "export \"x\" {\n  format = \"oci\"\n  paths = [" + hello + "]\n}\nexport \"y\" {\n  format = \"nar\"\n  paths = [" + hello + "]\n  output = \"x/y.nar\"\n}\n", nil, nil, "Duplicate output", "storepack.hcl:8:12"},
		{"max_layers", "export \"x\" {\n  format = \"oci\"\n  paths = [" + hello + "]\n  max_layers = 0\n}\n", nil, nil, "max_layers out of range", "storepack.hcl:4:16"},
		{"bad tag", "export \"x\" {\n  format = \"oci\"\n  paths = [" + hello + "]\n  tag = \"a b\"\n}\n", nil, nil, "Invalid tag", "storepack.hcl:4:9"},
		{"image attribute on nar", "export \"x\" {\n  format = \"nar\"\n  paths = [" + hello + "]\n  volumes = []\n}\n", nil, nil, "Attribute only for images", "storepack.hcl:4:3"},
		{"bad created", "export \"x\" {\n  format = \"oci\"\n  paths = [" + hello + "]\n  created = \"1969-12-31T00:00:00Z\"\n}\n", nil, nil, "Invalid created time", "storepack.hcl:4:13"},
		{"bad compression", "export \"x\" {\n  format = \"oci\"\n  paths = [" + hello + "]\n  compression = \"xz\"\n}\n", nil, nil, "Unknown compression", "storepack.hcl:4:17"},
		{"bad tarball compression", "export \"x\" {\n  format = \"tarball\"\n  paths = [" + hello + "]\n  compression = \"lz4\"\n}\n", nil, nil, "Unknown compression", "storepack.hcl:4:17"},
		{"database on nar", "export \"x\" {\n  format = \"nar\"\n  paths = [" + hello + "]\n  database = true\n}\n", nil, nil, "Attribute only for images, tarball, deb, rpm and squashfs", "storepack.hcl:4:3"},
		{"entrypoint on tarball", "export \"x\" {\n  format = \"tarball\"\n  paths = [" + hello + "]\n  entrypoint = [\"/bin/sh\"]\n}\n", nil, nil, "Attribute only for " + formatsLabel(format.TakingAttr("entrypoint")), "storepack.hcl:4:3"},
		{"tag on tarball", "export \"x\" {\n  format = \"tarball\"\n  paths = [" + hello + "]\n  tag = \"x:1\"\n}\n", nil, nil, "Attribute only for images", "storepack.hcl:4:3"},
		{"package on docker", "export \"x\" {\n  format = \"docker\"\n  paths = [" + hello + "]\n  package {\n    version = \"1.0\"\n  }\n}\n", nil, nil, "Block only for " + format.Join(format.TakingBlock("package")), "storepack.hcl:4:3"},
		{"deb without version", "export \"x\" {\n  format = \"deb\"\n  paths = [" + hello + "]\n  package {\n    maintainer = \"a <b@c>\"\n  }\n}\n", nil, nil, "Missing required argument", "storepack.hcl:4:11"},
		{"deb without package", "export \"x\" {\n  format = \"deb\"\n  paths = [" + hello + "]\n}\n", nil, nil, "Missing package block", "storepack.hcl:1:1"},
		{"deb bad version", "export \"x\" {\n  format = \"deb\"\n  paths = [" + hello + "]\n  package {\n    version = \"v1\"\n    maintainer = \"a <b@c>\"\n  }\n}\n", nil, nil, "Invalid package version", "storepack.hcl:5:15"},
		{"deb bad compression", "export \"x\" {\n  format = \"deb\"\n  paths = [" + hello + "]\n  compression = \"lz4\"\n  package {\n    version = \"1\"\n    maintainer = \"a <b@c>\"\n  }\n}\n", nil, nil, "Unknown compression", "storepack.hcl:4:17"},
		{"empty script", "export \"x\" {\n  format = \"deb\"\n  paths = [" + hello + "]\n  package {\n    version = \"1\"\n    maintainer = \"a <b@c>\"\n    postinst = \"\"\n  }\n}\n", nil, nil, "Empty package script", "storepack.hcl:7:16"},
		{"blank script", "export \"x\" {\n  format = \"rpm\"\n  paths = [" + hello + "]\n  package {\n    version = \"1\"\n    prerm = \" \\n\\t\\n\"\n  }\n}\n", nil, nil, "Empty package script", "storepack.hcl:6:13"},
		{"script of a #! line alone", "export \"x\" {\n  format = \"rpm\"\n  paths = [" + hello + "]\n  package {\n    version = \"1\"\n    preinst = \"#!/bin/bash\\n\\n\"\n  }\n}\n", nil, nil, "Empty package script", "storepack.hcl:6:15"},
		{"script with a relative interpreter", "export \"x\" {\n  format = \"deb\"\n  paths = [" + hello + "]\n  package {\n    version = \"1\"\n    maintainer = \"a <b@c>\"\n    postrm = \"#!bash\\nexit 0\\n\"\n  }\n}\n", nil, nil, "Invalid package script", "storepack.hcl:7:14"},
		{"script with a NUL", "export \"x\" {\n  format = \"rpm\"\n  paths = [" + hello + "]\n  package {\n    version = \"1\"\n    postinst = \"echo \\u0000\"\n  }\n}\n", nil, nil, "Invalid package script", "storepack.hcl:6:16"},
		{"script not a string", "export \"x\" {\n  format = \"rpm\"\n  paths = [" + hello + "]\n  package {\n    version = \"1\"\n    postinst = [\"a\"]\n  }\n}\n", nil, nil, "Incorrect attribute value type", "storepack.hcl:6:16"},
		{"script of a missing file", "export \"x\" {\n  format = \"rpm\"\n  paths = [" + hello + "]\n  package {\n    version = \"1\"\n    postinst = file(\"nope\")\n  }\n}\n", nil, nil, "Invalid function argument", "storepack.hcl:6:22"},
		{"rpm without package", "export \"x\" {\n  format = \"rpm\"\n  paths = [" + hello + "]\n}\n", nil, nil, "Missing package block", "storepack.hcl:1:1"},
		{"rpm bad compression", "export \"x\" {\n  format = \"rpm\"\n  paths = [" + hello + "]\n  compression = \"none\"\n  package {\n    version = \"1\"\n  }\n}\n", nil, nil, "Unknown compression", "storepack.hcl:4:17"},
		{"rpm bad release", "export \"x\" {\n  format = \"rpm\"\n  paths = [" + hello + "]\n  package {\n    version = \"1\"\n    release = \"1-2\"\n  }\n}\n", nil, nil, "Invalid package release", "storepack.hcl:6:15"},
		{"symlinks on nar", "export \"x\" {\n  format = \"nar\"\n  paths = [" + hello + "]\n  symlinks = {}\n}\n", nil, nil, "Attribute only for images and file system trees", "storepack.hcl:4:3"},
		{"bad port", "export \"x\" {\n  format = \"oci\"\n  paths = [" + hello + "]\n  exposed_ports = [\"0/tcp\"]\n}\n", nil, nil, "Invalid exposed port", "storepack.hcl:4:20"},
		{"absolute output", "export \"x\" {\n  format = \"nar\"\n  paths = [" + hello + "]\n  output = \"/x\"\n}\n", nil, nil, "Invalid output", "storepack.hcl:4:12"},
		{"bad export name", "export \"../x\" {\n  format = \"nar\"\n  paths = [" + hello + "]\n}\n", nil, nil, "Invalid export name", "storepack.hcl:1:8"},
		{"required variable", "variable \"v\" {}\n", nil, nil, "No value for required variable", "storepack.hcl:1:1"},
		{"undeclared --var", "", nil, map[string]string{"nope": "1"}, "Value for undeclared variable", ""},
		{"bad env value", "variable \"n\" {\n  type = number\n}\n", map[string]string{"STOREPACK_VAR_n": "x"}, nil, "Invalid value for variable", "storepack.hcl:1:1"},
		{"bad --var expression", "variable \"l\" {\n  type = list(string)\n}\n", nil, map[string]string{"l": "[a b]"}, "Missing item separator", "<value for var.l>:1:4"},
		{"cycle", "locals {\n  a = local.a\n}\n", nil, nil, "Cycle in references", "storepack.hcl:2:3"},
		{"missing file", "locals {\n  a = file(\"nope\")\n}\n", nil, nil, "Invalid function argument", "storepack.hcl:2:13"},
		{"missing source", "source \"s\" {\n  path = \"nope\"\n}\n", nil, nil, "Source not found", "storepack.hcl:2:10"},
		{"bad source name", "source \"s\" {\n  path = \"storepack.hcl\"\n  name = \"a/b\"\n}\n", nil, nil, "Invalid store name", "storepack.hcl:3:10"},
		{"two store blocks", "store {}\nstore {}\n", nil, nil, "Duplicate store block", "storepack.hcl:2:1"},
		{"bad SOURCE_DATE_EPOCH", "export \"x\" {\n  format = \"oci\"\n  paths = [" + hello + "]\n}\n", map[string]string{"SOURCE_DATE_EPOCH": "-1"}, nil, "Invalid SOURCE_DATE_EPOCH", ""},
		{"bad NIX_STORE_DIR", "", map[string]string{"NIX_STORE_DIR": "relative/store"}, nil, "Invalid NIX_STORE_DIR", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "storepack.hcl"), []byte(tt.text), 0o644); err != nil {
				t.Fatal(err)
			}
			sp, diags := Load(LoadOptions{Dir: dir, Env: testEnv(t, tt.env), Vars: tt.vars, System: "x86_64-linux"})
			if sp != nil {
				t.Errorf("Load succeeded; want an error")
			}
			errs := 0
			for _, d := range diags {
				if d.Severity == hcl.DiagError {
					errs++
				}
			}
			if errs != 1 || len(diags) == 0 {
				t.Fatalf("got %d errors, want 1:\n%s", errs, FormatDiagnostics(nil, diags))
			}
			d := diags[0]
			at := ""
			if d.Subject != nil {
				rel, err := filepath.Rel(dir, d.Subject.Filename)
				if err != nil || strings.HasPrefix(rel, "..") {
					rel = d.Subject.Filename
				}
				at = pos(hcl.Range{Filename: rel, Start: d.Subject.Start})
			}
			if d.Summary != tt.summary || at != tt.at {
				t.Errorf("got %q at %q, want %q at %q:\n%s", d.Summary, at, tt.summary, tt.at, FormatDiagnostics(nil, diags))
			}
		})
	}
}

// TestDefaults checks the values a minimal spec gets.
func TestDefaults(t *testing.T) {
	storeDir, err := filepath.Abs("testdata/store")
	if err != nil {
		t.Fatal(err)
	}
	hello := store.Path(storeDir + "/" + helloBase)
	tests := []struct {
		name   string
		format string
		env    map[string]string
		check  func(t *testing.T, e *Export)
	}{
		{"nar", "nar", nil, func(t *testing.T, e *Export) {
			want := Export{Name: "x", Format: "nar", Output: "x.nar", OutputDefault: true,
				Systems: []System{{Name: "x86_64-linux", Paths: []store.Path{hello}}}}
			if diff := cmp.Diff(want, *e, cmpIgnoreRanges); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		}},
		{"docker", "docker", nil, func(t *testing.T, e *Export) {
			want := Export{Name: "x", Format: "docker", Output: "x.tar", OutputDefault: true,
				Systems: []System{{Name: "x86_64-linux", Paths: []store.Path{hello}}},
				Created: DefaultCreated, Image: Image{MaxLayers: DefaultMaxLayers, Compression: "none"}}
			if diff := cmp.Diff(want, *e, cmpIgnoreRanges); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		}},
		{"oci with SOURCE_DATE_EPOCH", "oci", map[string]string{"SOURCE_DATE_EPOCH": "86400"}, func(t *testing.T, e *Export) {
			want := Export{Name: "x", Format: "oci", Output: "x", OutputDefault: true,
				Systems: []System{{Name: "x86_64-linux", Paths: []store.Path{hello}}},
				Created: "1970-01-02T00:00:00Z", Image: Image{MaxLayers: DefaultMaxLayers, Compression: "none"}}
			if diff := cmp.Diff(want, *e, cmpIgnoreRanges); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			text := "export \"x\" {\n  format = \"" + tt.format + "\"\n  paths = [\"" + string(hello) + "\"]\n}\n"
			sp, diags, _ := loadText(t, map[string]string{"storepack.hcl": text}, tt.env, nil)
			if sp == nil {
				t.Fatalf("Load failed:\n%s", diags)
			}
			tt.check(t, &sp.Exports[0])
		})
	}
}

var cmpIgnoreRanges = cmp.FilterPath(func(p cmp.Path) bool {
	s := p.Last().String()
	return s == ".Range" || s == ".Attrs"
}, cmp.Ignore())

// TestHostSystem checks that an export without systems targets the
// host given in LoadOptions, and that HostSystem is a known one here.
func TestHostSystem(t *testing.T) {
	host, ok := HostSystem()
	if !ok || !KnownSystem(host) {
		t.Errorf("HostSystem() = %q, %v: want a known system on the machines tests run on", host, ok)
	}
	storeDir, _ := filepath.Abs("testdata/store")
	text := "export \"x\" {\n  format = \"nar\"\n  paths = [\"" + storeDir + "/" + helloBase + "\"]\n}\n"
	for _, sys := range []string{"aarch64-linux", "riscv64-linux"} {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "a.hcl"), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		sp, diags := Load(LoadOptions{Dir: dir, Env: testEnv(t, nil), System: sys})
		if sp == nil {
			t.Fatalf("Load failed:\n%s", FormatDiagnostics(nil, diags))
		}
		if got := sp.Exports[0].Systems[0].Name; got != sys {
			t.Errorf("System %s: export targets %s", sys, got)
		}
	}
}

// TestStoreBlock checks the store block's defaults and how it resolves
// paths.
func TestStoreBlock(t *testing.T) {
	defaultDir := "/nix/store"
	if fi, err := os.Stat("/gnu/store"); err == nil && fi.IsDir() {
		defaultDir = "/gnu/store"
	}
	tests := []struct {
		name     string
		text     string
		env      map[string]string
		wantDir  string // "$DIR" is the spec folder
		wantDB   string
		noEnvDir bool // leave NIX_STORE_DIR unset
	}{
		{name: "no block, no NIX_STORE_DIR", noEnvDir: true, wantDir: defaultDir, wantDB: "auto"},
		{name: "no block, NIX_STORE_DIR", env: map[string]string{"NIX_STORE_DIR": "/custom/store"}, wantDir: "/custom/store", wantDB: "auto"},
		{name: "explicit", text: "store {\n  dir = \"/gnu/store\"\n  db = \"none\"\n}\n", wantDir: "/gnu/store", wantDB: "none"},
		{name: "relative", text: "store {\n  dir = \"root/gnu/store\"\n  db = \"root/var/guix/db/db.sqlite\"\n}\n", wantDir: "$DIR/root/gnu/store", wantDB: "$DIR/root/var/guix/db/db.sqlite"},
		{name: "unclean", text: "store {\n  dir = \"/gnu//store/\"\n}\n", wantDir: "/gnu/store", wantDB: "auto"},
		{name: "from a variable", text: "variable \"store\" {\n  default = \"/opt/store\"\n}\nstore {\n  dir = var.store\n  db = null\n}\n", wantDir: "/opt/store", wantDB: "auto"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "storepack.hcl"), []byte(tt.text), 0o644); err != nil {
				t.Fatal(err)
			}
			env := func(name string) (string, bool) {
				v, ok := tt.env[name]
				return v, ok
			}
			if !tt.noEnvDir && tt.env == nil {
				env = testEnv(t, nil)
			}
			sp, diags := Load(LoadOptions{Dir: dir, Env: env, System: "x86_64-linux"})
			if sp == nil {
				t.Fatalf("Load failed:\n%s", FormatDiagnostics(nil, diags))
			}
			want := Store{Dir: store.Dir(strings.ReplaceAll(tt.wantDir, "$DIR", dir)), DB: strings.ReplaceAll(tt.wantDB, "$DIR", dir)}
			if diff := cmp.Diff(want, sp.Store, cmpIgnoreRanges); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// TestFunctionNames checks that every function listed can be called.
func TestFunctionNames(t *testing.T) {
	l := newLoader(LoadOptions{})
	fns := l.functions()
	names := FunctionNames()
	if len(names) != len(fns) {
		t.Errorf("FunctionNames has %d names, the table %d functions", len(names), len(fns))
	}
	for _, n := range names {
		if _, ok := fns[n]; !ok {
			t.Errorf("FunctionNames lists %q, which is not in the table", n)
		}
	}
}

// TestStoreDirFromPaths: without store.dir, the store folder is the one
// that every store path of the exports is in, before NIX_STORE_DIR and the
// machine's default; paths in several folders leave the default.
func TestStoreDirFromPaths(t *testing.T) {
	other := filepath.Join(t.TempDir(), "other", "store")
	const base = "qvzbpnllxraamdsh8qmz8rsp7xrsnj9q-hello-2.12"
	if err := os.MkdirAll(filepath.Join(other, base, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	testStore, err := filepath.Abs("testdata/store")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, text string
		wantDir    string
		wantErr    string
	}{
		{"literal path", `export "x" {
  format = "nar"
  paths  = ["` + other + "/" + base + `"]
}
`, other, ""},
		{"through a local and a system block, with a source", `locals {
  hello = "` + other + "/" + base + `"
}
source "app" {
  path = "storepack.hcl"
}
export "x" {
  format  = "docker"
  systems = ["x86_64-linux", "aarch64-linux"]
  paths   = [source.app.store_path]
  entrypoint = ["${local.hello}/bin"]
  system "aarch64-linux" {
    paths = [local.hello]
  }
}
`, other, ""},
		{"two folders: NIX_STORE_DIR's", `export "x" {
  format = "nar"
  paths  = ["` + other + "/" + base + `", "` + testStore + "/" + helloBase + `"]
}
`, testStore, "is not in the store folder " + testStore},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sp, diags, _ := loadText(t, map[string]string{"storepack.hcl": tt.text}, nil, nil)
			if tt.wantErr != "" {
				if sp != nil || !strings.Contains(diags, tt.wantErr) {
					t.Fatalf("diagnostics %s, want one with %q", diags, tt.wantErr)
				}
				return
			}
			if sp == nil {
				t.Fatalf("Load failed:\n%s", diags)
			}
			if string(sp.Store.Dir) != tt.wantDir {
				t.Errorf("store folder %s, want %s", sp.Store.Dir, tt.wantDir)
			}
			for _, s := range sp.Sources {
				if s.StorePath.Dir() != store.Dir(tt.wantDir) {
					t.Errorf("source %s: store path %s, not in %s", s.Name, s.StorePath, tt.wantDir)
				}
			}
		})
	}
}

// TestDebWithoutMaintainer: a deb without a maintainer loads, with a
// warning at its package block.
func TestDebWithoutMaintainer(t *testing.T) {
	dir := t.TempDir()
	text := "export \"x\" {\n  format = \"deb\"\n  paths = [\"${env(\"NIX_STORE_DIR\")}/" + helloBase + "\"]\n  package {\n    version = \"1.0\"\n  }\n}\n"
	if err := os.WriteFile(filepath.Join(dir, "storepack.hcl"), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	sp, diags := Load(LoadOptions{Dir: dir, Env: testEnv(t, nil), System: "x86_64-linux"})
	if sp == nil || diags.HasErrors() {
		t.Fatalf("Load failed:\n%s", FormatDiagnostics(nil, diags))
	}
	if len(diags) != 1 || diags[0].Severity != hcl.DiagWarning || diags[0].Summary != "Package without a maintainer" || diags[0].Subject.Start.Line != 4 ||
		!strings.Contains(diags[0].Detail, `Set maintainer = "Name <address>".`) {
		t.Errorf("diagnostics:\n%s", FormatDiagnostics(nil, diags))
	}
	if p := sp.Exports[0].Package; p == nil || p.Name != "x" || p.Version != "1.0" || p.Release != "1" {
		t.Errorf("package %+v, want x 1.0-1", p)
	}
}

// TestPackageScripts: the package block's scripts, strings or file(...),
// each with its #! line, or /bin/sh's added before it.
func TestPackageScripts(t *testing.T) {
	hello := `"${env("NIX_STORE_DIR")}/` + helloBase + `"`
	tests := []struct {
		name   string
		format string
		attrs  string
		files  map[string]string
		want   plan.Scripts
	}{
		{"none", "deb", "", nil, plan.Scripts{}},
		{"string without #!", "deb", `postinst = "touch /var/lib/marker\n"`, nil,
			plan.Scripts{Postinst: "#!/bin/sh\ntouch /var/lib/marker\n"}},
		{"string with #!", "rpm", `preinst = "#!/bin/bash -e\necho $1\n"`, nil,
			plan.Scripts{Preinst: "#!/bin/bash -e\necho $1\n"}},
		{"heredoc", "rpm", "prerm = <<-EOT\n      set -e\n      echo prerm\n    EOT", nil,
			plan.Scripts{Prerm: "#!/bin/sh\nset -e\necho prerm\n"}},
		{"file", "deb", `postrm = file("scripts/postrm")`, map[string]string{"scripts/postrm": "#!/bin/sh\nrm -f /var/lib/marker\n"},
			plan.Scripts{Postrm: "#!/bin/sh\nrm -f /var/lib/marker\n"}},
		{"file without #!", "rpm", `postinst = file("postinst")`, map[string]string{"postinst": "echo installed\n"},
			plan.Scripts{Postinst: "#!/bin/sh\necho installed\n"}},
		{"all four", "deb", "preinst = \"a\"\n    postinst = \"b\"\n    prerm = \"c\"\n    postrm = \"d\"", nil,
			plan.Scripts{Preinst: "#!/bin/sh\na", Postinst: "#!/bin/sh\nb", Prerm: "#!/bin/sh\nc", Postrm: "#!/bin/sh\nd"}},
		{"null", "rpm", `postinst = null`, nil, plan.Scripts{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			text := "export \"x\" {\n  format = \"" + tt.format + "\"\n  paths = [" + hello + "]\n  package {\n    version = \"1\"\n    maintainer = \"a <b@c>\"\n    " + tt.attrs + "\n  }\n}\n"
			files := map[string]string{"storepack.hcl": text}
			maps.Copy(files, tt.files)
			for name, content := range files {
				if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			sp, diags := Load(LoadOptions{Dir: dir, Env: testEnv(t, nil), System: "x86_64-linux"})
			if sp == nil || len(diags) > 0 {
				t.Fatalf("Load:\n%s", FormatDiagnostics(nil, diags))
			}
			if got := sp.Exports[0].Package.Scripts; got != tt.want {
				t.Errorf("scripts %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestSBOMFormats lists export/sbom's formats for messages.
func TestSBOMFormats(t *testing.T) {
	if got, want := sbomFormats(), `"spdx" (SPDX 2.3 JSON) and "cyclonedx" (CycloneDX JSON)`; got != want {
		t.Errorf("sbomFormats() = %s, want %s", got, want)
	}
}

// TestProfileSpec: profile = true and the profile block, alone or
// together, ask for a profile; profile = false with a block, or two
// blocks, are errors at the block.
func TestProfileSpec(t *testing.T) {
	storeDir, err := filepath.Abs("testdata/store")
	if err != nil {
		t.Fatal(err)
	}
	hello := string(storeDir) + "/" + helloBase
	tests := []struct {
		body    string
		profile *Profile
		err     string
	}{
		{"", nil, ""},
		{"profile = true\n", &Profile{}, ""},
		{"profile = false\n", nil, ""},
		{"profile {\n  allow_collisions = true\n}\n", &Profile{AllowCollisions: true}, ""},
		{"profile = true\nprofile {\n}\n", &Profile{}, ""},
		{"profile = false\nprofile {\n}\n", nil, "Profile block without a profile"},
		{"profile {\n}\nprofile {\n}\n", &Profile{}, "Duplicate profile block"},
		{"profile {\n  allow = true\n}\n", &Profile{}, "Unsupported argument"},
	}
	for _, tt := range tests {
		text := "export \"x\" {\n  format = \"tarball\"\n  paths = [\"" + hello + "\"]\n" + tt.body + "}\n"
		sp, diags, _ := loadText(t, map[string]string{"storepack.hcl": text}, nil, nil)
		if tt.err != "" {
			if !strings.Contains(diags, tt.err) {
				t.Errorf("%q: %s, want %s", tt.body, diags, tt.err)
			}
			continue
		}
		if sp == nil || strings.Contains(diags, "Error") {
			t.Errorf("%q: %s", tt.body, diags)
			continue
		}
		if diff := cmp.Diff(tt.profile, sp.Exports[0].Profile); diff != "" {
			t.Errorf("%q: profile (-want +got):\n%s", tt.body, diff)
		}
	}
}

// TestAppImageSpec: an AppImage needs an entrypoint and an appimage block
// with a runtime that is a file; the block is an error elsewhere.
func TestAppImageSpec(t *testing.T) {
	storeDir, err := filepath.Abs("testdata/store")
	if err != nil {
		t.Fatal(err)
	}
	hello := string(storeDir) + "/" + helloBase
	runtime := filepath.Join(t.TempDir(), "runtime")
	if err := os.WriteFile(runtime, []byte("\x7fELF"), 0o755); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		format, body, err string
	}{
		{"appimage", "entrypoint = [\"bin/hello\"]\nprofile = true\nrelocatable = true\nappimage {\n  runtime = \"" + runtime + "\"\n}\n", ""},
		{"appimage", "profile = true\nappimage {\n  runtime = \"" + runtime + "\"\n}\n", "Missing entrypoint"},
		{"appimage", "entrypoint = [\"bin/hello\"]\n", "Missing appimage block"},
		{"appimage", "entrypoint = [\"bin/hello\"]\nappimage {\n  runtime = \"no-such-runtime\"\n}\n", "Invalid appimage runtime"},
		{"appimage", "entrypoint = [\"bin/hello\"]\nrelocatable = true\nappimage {\n  runtime = \"" + runtime + "\"\n}\n", "Relocatable without a profile"},
		{"tarball", "appimage {\n  runtime = \"" + runtime + "\"\n}\n", "Unexpected appimage block"},
		{"appimage", "entrypoint = [\"bin/hello\"]\nrelocatable = true\nappimage {\n  runtime = \"" + runtime + "\"\n}\n", "Missing profile"},
		{"appimage", "entrypoint = [\"bin/hello\"]\nprofile = true\nappimage {\n  runtime = \"" + runtime + "\"\n}\n", "Missing relocatable"},
	}
	for _, tt := range tests {
		text := "export \"x\" {\n  format = \"" + tt.format + "\"\n  paths = [\"" + hello + "\"]\n" + tt.body + "}\n"
		sp, diags, _ := loadText(t, map[string]string{"storepack.hcl": text}, nil, nil)
		if tt.err != "" {
			if !strings.Contains(diags, tt.err) {
				t.Errorf("%s %q: %s, want %s", tt.format, tt.body, diags, tt.err)
			}
			continue
		}
		if sp == nil || strings.Contains(diags, "Error") {
			t.Errorf("%q: %s", tt.body, diags)
			continue
		}
		if a := sp.Exports[0].AppImage; a == nil || a.Runtime != runtime || a.Name != "x" || !slices.Equal(a.Categories, []string{"Utility"}) {
			t.Errorf("appimage block %+v", a)
		}
	}
}
