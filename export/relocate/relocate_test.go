package relocate

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/storepack/storepack/store"
)

// TestWrappersReproducible rebuilds every wrapper from its source with
// BuildCommand and compares the bytes with the committed ones: the
// embedded programs are provably those of the source. The bytes depend
// on the Go toolchain, so another toolchain than bin/TOOLCHAIN's fails
// with a message saying so.
func TestWrappersReproducible(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: builds a wrapper for every architecture")
	}
	want, err := Toolchain()
	if err != nil {
		t.Fatal(err)
	}
	if got := runtime.Version(); got != want {
		t.Fatalf("the committed wrappers were built by %s, this test runs %s: run it with GOTOOLCHAIN=%s, or rebuild them (go generate ./export/relocate) and commit them with the new bin/TOOLCHAIN", want, got, want)
	}
	dir := t.TempDir()
	for _, goarch := range GOARCHes() {
		committed, err := Wrapper(goarch)
		if err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(dir, goarch)
		cmd := BuildCommand(goarch, out)
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%v: %v\n%s", cmd.Args, err, b)
		}
		rebuilt, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(rebuilt, committed) {
			t.Errorf("%s: the rebuilt wrapper (%d bytes) differs from bin/%s (%d bytes): run go generate ./export/relocate and commit bin/",
				goarch, len(rebuilt), BinName(goarch), len(committed))
		}
		if !bytes.HasPrefix(rebuilt, []byte("\x7fELF")) {
			t.Errorf("%s: the wrapper is not an ELF file", goarch)
		}
	}
}

// TestWrap checks that wrapping fills the wrapper's block alone, keeping
// the length, and that Target reads it back.
func TestWrap(t *testing.T) {
	w, err := Wrapper(runtime.GOARCH)
	if err != nil {
		t.Fatal(err)
	}
	const dir = store.Dir("/gnu/store")
	prog := "/gnu/store/0123456789abcdfghijklmnpqrsvwxyz-hello-2.12/bin/hello"
	b, err := Wrap(w, dir, prog)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != len(w) {
		t.Errorf("the wrapped program has %d bytes, the wrapper %d", len(b), len(w))
	}
	diff := 0
	for i := range b {
		if b[i] != w[i] {
			diff++
		}
	}
	if diff == 0 || diff > len(prog)+len(dir)+1 {
		t.Errorf("%d bytes differ between the wrapper and the wrapped program; want the block's paths alone", diff)
	}
	gotDir, gotProg, err := Target(b)
	if err != nil || gotDir != dir || gotProg != prog {
		t.Errorf("Target = %q, %q, %v; want %q, %q", gotDir, gotProg, err, dir, prog)
	}
	again, _ := Wrap(w, dir, prog)
	if !bytes.Equal(again, b) {
		t.Error("two wraps of the same program differ")
	}
	if _, _, err := Target(w); err == nil {
		t.Error("Target of the bare wrapper: no error")
	}
	for _, bad := range []string{"/nix/store/0123456789abcdfghijklmnpqrsvwxyz-hello/bin/hello", "/gnu/store/x/bin/hello", "bin/hello"} {
		if _, err := Wrap(w, dir, bad); err == nil || !strings.Contains(err.Error(), bad) {
			t.Errorf("Wrap of %q: error %v, want one naming it", bad, err)
		}
	}
	if _, err := Wrap(b, dir, prog); err == nil {
		t.Error("wrapping a wrapped program: no error")
	}
}

// TestForSystem maps system names to the wrappers of their architecture.
func TestForSystem(t *testing.T) {
	for system, goarch := range map[string]string{"x86_64-linux": "amd64", "aarch64-linux": "arm64", "armhf-linux": "arm", "armv6l-linux": "arm", "i686-linux": "386"} {
		got, err := ForSystem(system)
		if err != nil {
			t.Fatalf("%s: %v", system, err)
		}
		want, _ := Wrapper(goarch)
		if !bytes.Equal(got, want) {
			t.Errorf("%s: not the %s wrapper", system, goarch)
		}
	}
	if _, err := ForSystem("x86_64-darwin"); err == nil {
		t.Error("x86_64-darwin: no error")
	}
	if _, err := Wrapper("sparc"); err == nil || !strings.Contains(err.Error(), "sparc") {
		t.Errorf("Wrapper(sparc): %v", err)
	}
}
