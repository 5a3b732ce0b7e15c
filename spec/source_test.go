package spec

import (
	"bytes"
	"crypto/sha256"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/storepack/storepack/internal/oracle"
	"github.com/storepack/storepack/store"
	"github.com/storepack/storepack/store/nar"
)

// writeTree creates files (relative name -> contents) under root.
func writeTree(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for name, text := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestSourceReferences checks that a source's references are the store
// items whose hash parts its contents mention, and that they go into its
// store path.
func TestSourceReferences(t *testing.T) {
	storeDir := t.TempDir()
	glibc := store.Path(storeDir + "/ml7ylv3dyvmzkl82zl7vwsbcm13dd779-glibc-2.35")
	bash := store.Path(storeDir + "/9rg54gh2ym9b5skznxfm0lqcj2ywmv47-bash-5.1")
	unused := store.Path(storeDir + "/rdb2yvc2ji2yb2lyq5zn3ahzqcb50sfp-unused")
	for _, p := range []store.Path{glibc, bash, unused} {
		writeTree(t, string(p), map[string]string{"README": "an item"})
	}
	tests := []struct {
		name  string
		files map[string]string
		want  []store.Path
	}{
		{"none", map[string]string{"a.txt": "no store paths here"}, nil},
		{"one in a file", map[string]string{"run.sh": "#!" + string(bash) + "/bin/bash\n"}, []store.Path{bash}},
		{"hash part only", map[string]string{"conf": "ml7ylv3dyvmzkl82zl7vwsbcm13dd779"}, []store.Path{glibc}},
		{"several files", map[string]string{"a": string(glibc) + "/lib", "sub/b": "x" + bash.HashPart() + "x"}, []store.Path{bash, glibc}},
		{"in a file name", map[string]string{bash.HashPart() + ".link": ""}, []store.Path{bash}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeTree(t, filepath.Join(dir, "src"), tt.files)
			writeTree(t, dir, map[string]string{"storepack.hcl": "store {\n  dir = \"" + storeDir + "\"\n  db = \"none\"\n}\nsource \"src\" {\n  path = \"src\"\n}\n"})
			sp, diags := Load(LoadOptions{Dir: dir, Env: testEnv(t, nil), System: "x86_64-linux"})
			if sp == nil {
				t.Fatalf("Load failed:\n%s", FormatDiagnostics(nil, diags))
			}
			src := sp.Sources[0]
			if diff := cmp.Diff(tt.want, src.References); diff != "" {
				t.Errorf("References (-want +got):\n%s", diff)
			}
			var buf bytes.Buffer
			if err := nar.Dump(&buf, filepath.Join(dir, "src")); err != nil {
				t.Fatal(err)
			}
			if sum := sha256.Sum256(buf.Bytes()); Digest(sum) != src.NarHash || int64(buf.Len()) != src.NarSize {
				t.Errorf("NarHash, NarSize = %s, %d; want %s, %d", src.NarHash, src.NarSize, Digest(sum), buf.Len())
			}
			want, err := store.Dir(storeDir).SourcePath(src.NarHash[:], "src", tt.want, false)
			if err != nil {
				t.Fatal(err)
			}
			if src.StorePath != want {
				t.Errorf("StorePath = %s, want %s", src.StorePath, want)
			}
		})
	}
}

// TestSourceMatchesNix checks a source's NAR hash and store path against
// nix-hash and nix-store --add, on a tree with a folder, an executable and
// a symlink.
func TestSourceMatchesNix(t *testing.T) {
	nixStore := oracle.Require(t, "nix-store")
	nixHash := oracle.Require(t, "nix-hash")
	src := filepath.Join(t.TempDir(), "storepack-spec-oracle")
	writeTree(t, src, map[string]string{"bin/tool": "#!/bin/sh\necho tool\n", "share/doc/README": "read me\n", "empty": ""})
	if err := os.Chmod(filepath.Join(src, "bin/tool"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("bin/tool", filepath.Join(src, "run")); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"storepack.hcl": "store {\n  dir = \"/nix/store\"\n  db = \"none\"\n}\nsource \"s\" {\n  path = \"" + src + "\"\n}\n"})
	sp, diags := Load(LoadOptions{Dir: dir, Env: testEnv(t, nil), System: "x86_64-linux"})
	if sp == nil {
		t.Fatalf("Load failed:\n%s", FormatDiagnostics(nil, diags))
	}
	got := sp.Sources[0]

	run := func(name string, args ...string) string {
		return strings.TrimSpace(string(oracle.Output(t, oracle.Nix(t, nil, name, args...))))
	}
	if want := run(nixHash, "--type", "sha256", src); "sha256:"+want != got.NarHash.String() {
		t.Errorf("NarHash = %s, nix-hash says sha256:%s", got.NarHash, want)
	}
	if want := run(nixStore, "--add", src); store.Path(want) != got.StorePath {
		t.Errorf("StorePath = %s, nix-store --add says %s", got.StorePath, want)
	}
}
