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
