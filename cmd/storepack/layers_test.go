package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// layersSpec writes a spec folder exporting hello (and its closure:
// glibc, tzdata, greeting) of gen's testdata store as a docker image.
func layersSpec(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("../../gen/testdata/root")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	spec := `store {
  dir  = "/gnu/store"
  root = "` + root + `"
  db   = "none"
}

export "hello" {
  format     = "docker"
  systems    = ["x86_64-linux"]
  paths      = ["/gnu/store/qvzbpnllxraamdsh8qmz8rsp7xrsnj9q-hello-2.12"]
  tag        = "hello:1"
  max_layers = 3
}
`
	if err := os.WriteFile(filepath.Join(dir, "storepack.hcl"), []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestPlanSummary: plan --summary lists the export, each layer with its
// bar, reason and items, the largest items and the total.
func TestPlanSummary(t *testing.T) {
	dir := layersSpec(t)
	out := string(ok(t, nil, "plan", "--summary", "-C", dir))
	for _, want := range []string{
		"export hello (docker): hello.tar\n",
		"  x86_64-linux: 4 store items,",
		"    image hello:1, 3 layers:\n",
		"  root      hello-2.12\n",
		"  group 1   ",
		"  extra     (",
		"    largest items:\n",
		"    total ",
		"[########################]",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("plan --summary lacks %q:\n%s", want, out)
		}
	}
}

// TestWhy: why prints the chain from the root to the item asked for, by
// name or store path, and fails on an item outside the closure.
func TestWhy(t *testing.T) {
	dir := layersSpec(t)
	const hello = "/gnu/store/qvzbpnllxraamdsh8qmz8rsp7xrsnj9q-hello-2.12"
	const glibc = "/gnu/store/7x3fb49z5m5zc3qp8gj7dskrpcrgc9mi-glibc-2.39"
	want := hello + "\n└───" + glibc + "\n"
	for _, p := range []string{"glibc-2.39", glibc} {
		if got := string(ok(t, nil, "why", "-C", dir, "hello", p)); got != want {
			t.Errorf("why hello %s:\n%s\nwant:\n%s", p, got, want)
		}
	}
	r := storepack(t, nil, "why", "-C", dir, "hello", "zlib-1.3")
	if r.code != 1 || !strings.Contains(string(r.stderr), "zlib-1.3: not in the closure") {
		t.Errorf("why hello zlib-1.3: exit %d, stderr %q; want 1 and not in the closure", r.code, r.stderr)
	}
}

// TestDiff: a release that changes only its top item (a source) adds one
// layer, the root layer, whether the releases are compared as plans, lock
// files or OCI layouts, or with plan --since; a release against itself
// adds none.
func TestDiff(t *testing.T) {
	root, err := filepath.Abs("../../gen/testdata/root")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	spec := `store {
  dir  = "/gnu/store"
  root = "` + root + `"
  db   = "none"
}

source "app" {
  path = "app"
}

export "web" {
  format      = "oci"
  compression = "gzip"
  systems     = ["x86_64-linux"]
  paths       = ["/gnu/store/qvzbpnllxraamdsh8qmz8rsp7xrsnj9q-hello-2.12", source.app.store_path]
  tag         = "web:1"
  max_layers  = 3
}
`
	write := func(name, content string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("storepack.hcl", spec)
	tmp := t.TempDir()
	release := func(v string) (planFile, layout string) {
		t.Helper()
		write("app/version", v+"\n")
		planFile = filepath.Join(tmp, v+".json")
		if err := os.WriteFile(planFile, ok(t, nil, "plan", "-C", dir), 0o644); err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(tmp, "out-"+v)
		ok(t, nil, "export", "-q", "-C", dir, "--out", out)
		return planFile, filepath.Join(out, "web")
	}
	plan1, layout1 := release("v1")
	ok(t, nil, "lock", "-C", dir)
	lock1 := filepath.Join(tmp, "v1.lock")
	if err := os.Rename(filepath.Join(dir, "storepack.lock"), lock1); err != nil {
		t.Fatal(err)
	}
	plan2, layout2 := release("v2")
	oneRoot := []string{"1 new layers", "root ", " app", "hello-2.12"}
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"plans", []string{"diff", plan1, plan2}, oneRoot},
		{"layouts", []string{"diff", layout1, layout2}, []string{"1 new layers", " app", "hello-2.12"}},
		{"lock and plan", []string{"diff", lock1, plan2}, oneRoot},
		{"plan --since", []string{"plan", "-C", dir, "--since", lock1}, oneRoot},
		{"a plan against itself", []string{"diff", plan2, plan2}, []string{"0 new layers, 0 B (0 bytes)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := string(ok(t, nil, tt.args...))
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("%v lacks %q:\n%s", tt.args, w, out)
				}
			}
		})
	}
}
