package store

import (
	"database/sql"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/storepack/storepack/internal/nixdb"
	"github.com/storepack/storepack/store/nar"
)

// fakeItem describes an item of a fabricated store. Hash parts are one
// repeated digit so that the sorted order of items is plain to see.
type fakeItem struct {
	digit   byte     // the hash part is 32 of these
	name    string   // name part
	refs    []string // names of the items it refers to (its own for a self-reference)
	deriver string
}

// fakeStore is a store folder and database made by a test, laid out as a
// chroot Nix store: <root>/nix/store and <root>/nix/var/nix/db/db.sqlite.
type fakeStore struct {
	root  string
	dir   Dir
	db    string
	paths map[string]Path // by name
}

// diamond is the fabricated store most tests use: top refers to left and
// right, both refer to base, left also to lib; base refers to itself; other
// is not in top's closure.
var diamond = []fakeItem{
	{'0', "lib", nil, "/nix/store/00000000000000000000000000000000-lib.drv"},
	{'1', "base", []string{"base"}, ""},
	{'2', "right", []string{"base"}, ""},
	{'3', "left", []string{"lib", "base"}, ""},
	{'4', "other", []string{"base"}, ""},
	{'5', "top", []string{"right", "left"}, "/nix/store/55555555555555555555555555555555-top.drv"},
}

// makeFakeStore writes items (each a file naming the full paths of its
// references, so scanning finds the same) and a WAL-mode database
// describing them.
func makeFakeStore(t *testing.T, items []fakeItem) *fakeStore {
	t.Helper()
	root := t.TempDir()
	fs := &fakeStore{root: root, dir: Dir(filepath.Join(root, "nix/store")), db: filepath.Join(root, "nix/var/nix/db/db.sqlite"), paths: map[string]Path{}}
	for _, d := range []string{string(fs.dir), filepath.Dir(fs.db)} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, it := range items {
		fs.paths[it.name] = fs.dir.Join(strings.Repeat(string(it.digit), HashLen) + "-" + it.name)
	}
	for _, it := range items {
		var b strings.Builder
		b.WriteString("item " + it.name + "\n")
		for _, r := range it.refs {
			b.WriteString(string(fs.paths[r]) + "/bin\n")
		}
		if err := os.WriteFile(string(fs.paths[it.name]), []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	db := writableDB(t, fs.db)
	defer db.Close()
	if err := nixdb.Create(db, "WAL"); err != nil {
		t.Fatal(err)
	}
	for _, it := range items {
		fs.register(t, db, it)
	}
	return fs
}

// register adds it to the database.
func (fs *fakeStore) register(t *testing.T, db *sql.DB, it fakeItem) {
	t.Helper()
	p := fs.paths[it.name]
	sum, size, err := nar.Hash(string(p))
	if err != nil {
		t.Fatal(err)
	}
	var refs []string
	for _, r := range it.refs {
		refs = append(refs, string(fs.paths[r]))
	}
	if err := nixdb.Register(db, string(p), "sha256:"+hex.EncodeToString(sum[:]), size, it.deriver, refs); err != nil {
		t.Fatal(err)
	}
}

// writableDB opens (creating) an SQLite database for writing.
func writableDB(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", sqliteURI(path)+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	return db
}

// names maps paths back to the fake store's item names.
func (fs *fakeStore) names(ps []Path) []string {
	byPath := map[Path]string{}
	for n, p := range fs.paths {
		byPath[p] = n
	}
	out := []string{}
	for _, p := range ps {
		if n, ok := byPath[p]; ok {
			out = append(out, n)
		} else {
			out = append(out, string(p))
		}
	}
	return out
}
