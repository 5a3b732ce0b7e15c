package nar_test

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/storepack/storepack/store/nar"
)

// TestRestoreRoots restores roots of each kind and checks what dir becomes.
func TestRestoreRoots(t *testing.T) {
	tests := []struct {
		name  string
		in    []byte
		check func(t *testing.T, p string, fi os.FileInfo)
	}{
		{"regular", newNAR().file("data", false).bytes(), func(t *testing.T, p string, fi os.FileInfo) {
			if b, _ := os.ReadFile(p); !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o444 || string(b) != "data" {
				t.Errorf("got %v %q, want a 0444 file holding %q", fi.Mode(), b, "data")
			}
		}},
		{"executable", newNAR().file("#!/bin/sh\n", true).bytes(), func(t *testing.T, p string, fi os.FileInfo) {
			if fi.Mode().Perm() != 0o555 {
				t.Errorf("mode %v, want 0555", fi.Mode())
			}
		}},
		{"dangling symlink", newNAR().str("(", "type", "symlink", "target", "nowhere/at/all", ")").bytes(), func(t *testing.T, p string, fi os.FileInfo) {
			if target, _ := os.Readlink(p); fi.Mode().Type() != os.ModeSymlink || target != "nowhere/at/all" {
				t.Errorf("got %v -> %q", fi.Mode(), target)
			}
		}},
		{"empty folder", newNAR().str("(", "type", "directory", ")").bytes(), func(t *testing.T, p string, fi os.FileInfo) {
			if !fi.IsDir() || fi.Mode().Perm() != 0o555 {
				t.Errorf("got %v, want a 0555 folder", fi.Mode())
			}
		}},
	}
	// The umask must play no part.
	old := syscall.Umask(0o077)
	defer syscall.Umask(old)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "out")
			if err := nar.Restore(bytes.NewReader(tc.in), p); err != nil {
				t.Fatal(err)
			}
			fi, err := os.Lstat(p)
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, p, fi)
			makeWritable(t, p)
		})
	}
}

// TestRestoreExisting refuses a destination that exists, of any kind, and
// leaves it as it was.
func TestRestoreExisting(t *testing.T) {
	in := newNAR().str("(", "type", "directory").entry("f", "x").str(")").bytes()
	for _, kind := range []string{"folder", "file", "symlink"} {
		t.Run(kind, func(t *testing.T) {
			tmp := t.TempDir()
			p := filepath.Join(tmp, "out")
			var err error
			switch kind {
			case "folder":
				err = os.Mkdir(p, 0o755)
			case "file":
				err = os.WriteFile(p, []byte("keep"), 0o644)
			case "symlink":
				err = os.Symlink(tmp, p)
			}
			if err != nil {
				t.Fatal(err)
			}
			before, _ := os.Lstat(p)
			err = nar.Restore(bytes.NewReader(in), p)
			if err == nil || !strings.Contains(err.Error(), p) || !errors.Is(err, fs.ErrExist) {
				t.Fatalf("error %v, want one saying %s exists", err, p)
			}
			after, serr := os.Lstat(p)
			if serr != nil || after.Mode() != before.Mode() || after.ModTime() != before.ModTime() {
				t.Errorf("Restore changed %s", p)
			}
			if _, err := os.Lstat(filepath.Join(tmp, "f")); !os.IsNotExist(err) {
				t.Error("Restore wrote through the existing symlink")
			}
		})
	}
}

// TestRestoreCleansUp checks that a NAR failing late (after files, folders
// made read-only and symlinks were created) leaves nothing, and that the
// error names the NAR path.
func TestRestoreCleansUp(t *testing.T) {
	tail := []struct {
		name string
		nb   func(*narBuilder) *narBuilder
		path string
	}{
		{"unsorted", func(nb *narBuilder) *narBuilder {
			return nb.entry("m", "x").entry("a", "late")
		}, "/"},
		{"bad name", func(nb *narBuilder) *narBuilder {
			return nb.str("entry", "(", "name", "..", "node").file("escape", false).str(")")
		}, "/"},
		{"truncated", func(nb *narBuilder) *narBuilder {
			return nb.str("entry", "(", "name", "z", "node", "(", "type", "regular", "contents").u64(50).raw([]byte("cut"))
		}, "/z"},
	}
	for _, tc := range tail {
		t.Run(tc.name, func(t *testing.T) {
			nb := newNAR().str("(", "type", "directory").
				entry("a-file", "data").
				str("entry", "(", "name", "b-dir", "node", "(", "type", "directory").
				str("entry", "(", "name", "inner", "node", "(", "type", "directory").entry("f", "y").str(")", ")").
				str("entry", "(", "name", "link", "node", "(", "type", "symlink", "target", "/etc", ")", ")").
				str(")", ")")
			tc.nb(nb)
			tmp := t.TempDir()
			p := filepath.Join(tmp, "out")
			err := nar.Restore(bytes.NewReader(nb.bytes()), p)
			if err == nil {
				t.Fatal("Restore succeeded")
			}
			if fe := asFormatError(t, err); fe.Path != tc.path {
				t.Errorf("error names %q, want %q: %v", fe.Path, tc.path, err)
			}
			ents, _ := os.ReadDir(tmp)
			if len(ents) != 0 {
				t.Errorf("Restore left %v in %s", ents, tmp)
			}
		})
	}
}
