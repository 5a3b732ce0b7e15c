package nar_test

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/storepack/storepack/internal/oracle"
	"github.com/storepack/storepack/store/nar"
)

// nixCmd prepares a Nix tool run without a daemon (NIX_REMOTE empty). The
// commands used here (--dump, --restore, nix-hash) never touch the store.
func nixCmd(t *testing.T, tool string, args ...string) *exec.Cmd {
	t.Helper()
	return oracle.Nix(t, nil, tool, args...)
}

func nixOutput(t *testing.T, tool string, args ...string) []byte {
	t.Helper()
	return oracle.Output(t, nixCmd(t, tool, args...))
}

// treeRoots are the paths within the test tree dumped and hashed: the whole
// tree and roots of each kind.
var treeRoots = []string{"", "bin", "bin/tool", "empty", "eight", "link-rel", "link-dangling", "link-abs", "empty-dir", "big/c", "order"}

// TestDumpMatchesNix compares Dump with `nix-store --dump` byte for byte.
func TestDumpMatchesNix(t *testing.T) {
	oracle.Require(t, "nix-store")
	dir := filepath.Join(t.TempDir(), "tree")
	writeTree(t, dir)
	for _, sub := range treeRoots {
		t.Run("/"+sub, func(t *testing.T) {
			p := filepath.Join(dir, sub)
			want := nixOutput(t, "nix-store", "--dump", p)
			var got bytes.Buffer
			if err := nar.Dump(&got, p); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got.Bytes(), want) {
				t.Fatalf("Dump gave %d bytes, nix-store --dump %d; first difference at %d", got.Len(), len(want), firstDiff(got.Bytes(), want))
			}
		})
	}
}

// TestDumpToFile checks Dump into an *os.File, the case the command uses.
func TestDumpToFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tree")
	writeTree(t, dir)
	var want bytes.Buffer
	if err := nar.Dump(&want, dir); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(filepath.Join(t.TempDir(), "out.nar"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := nar.Dump(f, dir); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want.Bytes()) {
		t.Errorf("Dump to a file differs from Dump to a buffer at byte %d", firstDiff(got, want.Bytes()))
	}
}

// TestHashMatchesNix compares Hash with `nix-hash --type sha256` and its
// size with the length of the dump.
func TestHashMatchesNix(t *testing.T) {
	oracle.Require(t, "nix-hash")
	dir := filepath.Join(t.TempDir(), "tree")
	writeTree(t, dir)
	for _, sub := range treeRoots {
		t.Run("/"+sub, func(t *testing.T) {
			p := filepath.Join(dir, sub)
			want := strings.TrimSpace(string(nixOutput(t, "nix-hash", "--type", "sha256", p)))
			sum, size, err := nar.Hash(p)
			if err != nil {
				t.Fatal(err)
			}
			if got := hex.EncodeToString(sum[:]); got != want {
				t.Errorf("Hash %s, nix-hash %s", got, want)
			}
			var b bytes.Buffer
			if err := nar.Dump(&b, p); err != nil {
				t.Fatal(err)
			}
			if size != int64(b.Len()) {
				t.Errorf("Hash size %d, dump length %d", size, b.Len())
			}
		})
	}
}

// TestRestoreMatchesNix restores what nix-store --dump wrote and checks the
// result with nix-store --dump, against nix-store --restore of the same
// NAR, and for the modes a store has.
func TestRestoreMatchesNix(t *testing.T) {
	oracle.Require(t, "nix-store")
	dir := filepath.Join(t.TempDir(), "tree")
	writeTree(t, dir)
	for _, sub := range treeRoots {
		t.Run("/"+sub, func(t *testing.T) {
			src := nixOutput(t, "nix-store", "--dump", filepath.Join(dir, sub))
			tmp := t.TempDir()
			ours, theirs := filepath.Join(tmp, "ours"), filepath.Join(tmp, "theirs")
			if err := nar.Restore(bytes.NewReader(src), ours); err != nil {
				t.Fatal(err)
			}
			defer makeWritable(t, ours)
			cmd := nixCmd(t, "nix-store", "--restore", theirs)
			cmd.Stdin = bytes.NewReader(src)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("nix-store --restore: %v\n%s", err, out)
			}
			if again := nixOutput(t, "nix-store", "--dump", ours); !bytes.Equal(again, src) {
				t.Errorf("nix-store --dump of the restored tree differs at byte %d", firstDiff(again, src))
			}
			compareTrees(t, ours, theirs)
		})
	}
}

// compareTrees checks that ours has the same names, types, symlink targets
// and executable bits as theirs (restored by Nix), and store modes: files
// 0444 or 0555, folders 0555.
func compareTrees(t *testing.T, ours, theirs string) {
	t.Helper()
	n := 0
	err := filepath.WalkDir(theirs, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(theirs, p)
		n++
		want, err := os.Lstat(p)
		if err != nil {
			return err
		}
		got, err := os.Lstat(filepath.Join(ours, rel))
		if err != nil {
			t.Errorf("%s: missing from our restore: %v", rel, err)
			return nil
		}
		if got.Mode().Type() != want.Mode().Type() {
			t.Errorf("%s: type %v, Nix %v", rel, got.Mode().Type(), want.Mode().Type())
			return nil
		}
		switch {
		case want.Mode().IsRegular():
			exec := want.Mode()&0o100 != 0
			wantMode := fs.FileMode(0o444)
			if exec {
				wantMode = 0o555
			}
			if got.Mode().Perm() != wantMode {
				t.Errorf("%s: mode %v, want %v", rel, got.Mode().Perm(), wantMode)
			}
		case want.IsDir():
			if got.Mode().Perm() != 0o555 {
				t.Errorf("%s: folder mode %v, want 0555", rel, got.Mode().Perm())
			}
		default:
			a, _ := os.Readlink(filepath.Join(ours, rel))
			b, _ := os.Readlink(p)
			if a != b {
				t.Errorf("%s: target %q, Nix %q", rel, a, b)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	count := 0
	filepath.WalkDir(ours, func(string, fs.DirEntry, error) error { count++; return nil })
	if count != n {
		t.Errorf("our restore has %d nodes, Nix's %d", count, n)
	}
}

// TestRestoreTrailingBytes checks that trailing bytes after the root node
// are ignored, as nix-store --restore ignores them.
func TestRestoreTrailingBytes(t *testing.T) {
	oracle.Require(t, "nix-store")
	in := append(newNAR().str("(", "type", "directory").entry("f", "x").str(")").bytes(), "garbage after the archive"...)
	tmp := t.TempDir()
	cmd := nixCmd(t, "nix-store", "--restore", filepath.Join(tmp, "theirs"))
	cmd.Stdin = bytes.NewReader(in)
	_, nixErr := cmd.CombinedOutput()
	ourErr := nar.Restore(bytes.NewReader(in), filepath.Join(tmp, "ours"))
	makeWritable(t, tmp)
	if (nixErr == nil) != (ourErr == nil) {
		t.Fatalf("nix-store --restore: %v; Restore: %v", nixErr, ourErr)
	}
}

// TestRestoreRejectsLikeNix feeds NARs that Nix refuses to both restores:
// each must fail, and ours must leave nothing behind.
func TestRestoreRejectsLikeNix(t *testing.T) {
	oracle.Require(t, "nix-store")
	dir := func() *narBuilder { return newNAR().str("(", "type", "directory") }
	tests := []struct {
		name string
		in   []byte
		path string // the NAR path our error names
	}{
		{"wrong magic", new(narBuilder).str("nix-archive-0").bytes(), ""},
		{"name dot dot", dir().str("entry", "(", "name", "..", "node").file("x", false).str(")", ")").bytes(), "/"},
		{"name with slash", dir().str("entry", "(", "name", "a/b", "node").file("x", false).str(")", ")").bytes(), "/"},
		{"unknown type", dir().entry("a", "x").str("entry", "(", "name", "b", "node", "(", "type", "fifo", ")", ")", ")").bytes(), "/b"},
		{"truncated deep inside", dir().entry("a", "x").str("entry", "(", "name", "sub", "node", "(", "type", "directory").entry("f", "y").bytes(), "/sub"},
		{"truncated contents", dir().entry("a", "x").str("entry", "(", "name", "b", "node", "(", "type", "regular", "contents").u64(100).raw([]byte("short")).bytes(), "/b"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tmp := t.TempDir()
			cmd := nixCmd(t, "nix-store", "--restore", filepath.Join(tmp, "theirs"))
			cmd.Stdin = bytes.NewReader(tc.in)
			if out, err := cmd.CombinedOutput(); err == nil {
				t.Fatalf("nix-store --restore accepted the NAR:\n%s", out)
			}
			out := filepath.Join(tmp, "ours")
			err := nar.Restore(bytes.NewReader(tc.in), out)
			makeWritable(t, tmp)
			if err == nil {
				t.Fatal("Restore accepted the NAR")
			}
			fe := asFormatError(t, err)
			if fe.Path != tc.path {
				t.Errorf("error names %q, want %q (%v)", fe.Path, tc.path, err)
			}
			if _, serr := os.Lstat(out); !os.IsNotExist(serr) {
				t.Errorf("Restore left %s behind after failing (%v)", out, serr)
			}
		})
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// TestDumpBeyondReadAhead compares Dump and Hash with nix-store --dump
// and nix-hash on a tree larger than all the read-ahead buffers: more
// files than a stream may hold open, in folders of their own and
// together, and a file larger than every buffer, read in pieces on
// several readers; and with several streams at once, which share the
// buffers beyond their own.
func TestDumpBeyondReadAhead(t *testing.T) {
	oracle.Require(t, "nix-store")
	oracle.Require(t, "nix-hash")
	dir := filepath.Join(t.TempDir(), "tree")
	chunk := bytes.Repeat([]byte("read ahead of the hasher\n"), 1<<10)
	write := func(name string, size int, mode os.FileMode) {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		b := make([]byte, 0, size)
		for len(b) < size {
			b = append(b, chunk[:min(len(chunk), size-len(b))]...)
		}
		b = append(b[:0:0], b...)
		if size > 0 {
			b[0] = byte(len(name)) // no two alike
		}
		if err := os.WriteFile(p, b, mode); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 300 {
		write(fmt.Sprintf("many/f%03d", i), i*37%3000, 0o644)
		if i%5 == 0 {
			write(fmt.Sprintf("nested/d%03d/only", i), i*101, 0o755)
		}
	}
	write("huge", 9<<20+3, 0o644)
	for i := range 6 {
		write(fmt.Sprintf("mid/m%d", i), 1<<20+i*4093, 0o644)
	}
	want := nixOutput(t, "nix-store", "--dump", dir)
	var got bytes.Buffer
	if err := nar.Dump(&got, dir); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Bytes(), want) {
		t.Fatalf("Dump gave %d bytes, nix-store --dump %d; first difference at %d", got.Len(), len(want), firstDiff(got.Bytes(), want))
	}
	wantHash := strings.TrimSpace(string(nixOutput(t, "nix-hash", "--type", "sha256", dir)))
	errs := make(chan error, 4)
	for range cap(errs) {
		go func() {
			sum, size, err := nar.Hash(dir)
			if err == nil && (hex.EncodeToString(sum[:]) != wantHash || size != int64(len(want))) {
				err = fmt.Errorf("Hash %x (%d bytes), nix-hash %s (%d)", sum, size, wantHash, len(want))
			}
			errs <- err
		}()
	}
	for range cap(errs) {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}
