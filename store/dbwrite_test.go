package store

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestWriteDB writes the database of a fabricated store's items and reads
// it back through Open: every item has the NAR hash, size, deriver and
// references it had; a second write gives the same bytes.
func TestWriteDB(t *testing.T) {
	fs := makeFakeStore(t, diamond)
	src, err := Open(Options{Dir: fs.dir, DB: fs.db})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	var infos []PathInfo
	for _, it := range diamond {
		info, err := src.Info(fs.paths[it.name])
		if err != nil {
			t.Fatal(err)
		}
		infos = append(infos, *info)
	}
	out := t.TempDir()
	at := time.Unix(1700000000, 0)
	files := []string{filepath.Join(out, "a.sqlite"), filepath.Join(out, "b.sqlite")}
	for _, f := range files {
		if err := WriteDB(f, infos, at); err != nil {
			t.Fatal(err)
		}
	}
	a, _ := os.ReadFile(files[0])
	b, _ := os.ReadFile(files[1])
	if len(a) == 0 || !bytes.Equal(a, b) {
		t.Errorf("two writes of the same items differ (%d and %d bytes)", len(a), len(b))
	}
	if ents, _ := os.ReadDir(out); len(ents) != 2 {
		t.Errorf("the folder holds %d files, want the 2 databases", len(ents))
	}
	got, err := Open(Options{Dir: fs.dir, DB: files[0]})
	if err != nil {
		t.Fatal(err)
	}
	defer got.Close()
	for _, want := range infos {
		info, err := got.Info(want.Path)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, *info); diff != "" {
			t.Errorf("%s read back (-want +got):\n%s", want.Path, diff)
		}
	}
}

// TestWriteDBRefusesDanglingReferences checks that a closure missing an
// item it refers to is an error naming both, and leaves no file.
func TestWriteDBRefusesDanglingReferences(t *testing.T) {
	d := Dir("/nix/store")
	a, b := d.Join(strings.Repeat("a", HashLen)+"-a"), d.Join(strings.Repeat("b", HashLen)+"-b")
	items := []PathInfo{{Path: a, NarHash: make([]byte, 32), NarSize: 8, References: []Path{a, b}}}
	file := filepath.Join(t.TempDir(), "db.sqlite")
	err := WriteDB(file, items, time.Unix(1, 0))
	if err == nil || !strings.Contains(err.Error(), string(b)) || !strings.Contains(err.Error(), "not registered") {
		t.Errorf("err = %v, want one naming %s as not registered", err, b)
	}
	if _, serr := os.Lstat(file); serr == nil {
		t.Error("the database file was left behind")
	}
}

func TestTreeDB(t *testing.T) {
	for d, want := range map[Dir]string{
		"/gnu/store": "/var/guix/db/db.sqlite",
		"/nix/store": "/nix/var/nix/db/db.sqlite",
		"/opt/store": "/nix/var/nix/db/db.sqlite",
	} {
		if got := TreeDB(d); got != want {
			t.Errorf("TreeDB(%s) = %s, want %s", d, got, want)
		}
	}
}
