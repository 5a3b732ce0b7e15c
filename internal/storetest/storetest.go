// Package storetest makes small fake Nix stores for tests: a store folder
// <root>/nix/store whose items are folders of files, and a database
// <root>/nix/var/nix/db/db.sqlite with Nix's schema describing them (NAR
// hashes, sizes, references and derivers as Nix records them).
package storetest

import (
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	_ "modernc.org/sqlite" // the "sqlite" database/sql driver

	"github.com/storepack/storepack/internal/nixdb"
	"github.com/storepack/storepack/store"
	"github.com/storepack/storepack/store/nar"
)

// Item is one item of a fake store: a folder holding Files (relative path
// to contents) and, when it has references, a file "refs" naming their
// store paths, so that scanning finds the same references as the
// database.
type Item struct {
	Name  string
	Files map[string]string
	Refs  []string // names of the items it refers to
}

// Store is a fake store made by New.
type Store struct {
	// Root holds everything; Dir is Root/nix/store, DB the database.
	Root, Dir, DB string
	paths         map[string]string
}

// New writes items (in the order given, so references must come first)
// and a database describing them, in journal mode DELETE (WAL when wal).
func New(t testing.TB, wal bool, items ...Item) *Store {
	t.Helper()
	root := t.TempDir()
	s := &Store{Root: root, Dir: filepath.Join(root, "nix/store"), DB: filepath.Join(root, "nix/var/nix/db/db.sqlite"), paths: map[string]string{}}
	for _, d := range []string{s.Dir, filepath.Dir(s.DB)} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	db := s.Writer(t)
	defer db.Close()
	mode := "DELETE"
	if wal {
		mode = "WAL"
	}
	if err := nixdb.Create(db, mode); err != nil {
		t.Fatal(err)
	}
	for _, it := range items {
		s.add(t, db, it)
	}
	return s
}

// Path is the store path of the item named name.
func (s *Store) Path(name string) string {
	if p, ok := s.paths[name]; ok {
		return p
	}
	sum := sha256.Sum256([]byte(name))
	return filepath.Join(s.Dir, store.Encode32(sum[:20])+"-"+name)
}

// add writes it and registers it.
func (s *Store) add(t testing.TB, db *sql.DB, it Item) {
	t.Helper()
	p := s.Path(it.Name)
	s.paths[it.Name] = p
	files := map[string]string{}
	for k, v := range it.Files {
		files[k] = v
	}
	if len(it.Refs) > 0 {
		var b strings.Builder
		for _, r := range it.Refs {
			b.WriteString(s.Path(r) + "\n")
		}
		files["refs"] = b.String()
	}
	if err := os.MkdirAll(p, 0o755); err != nil {
		t.Fatal(err)
	}
	for rel, data := range files {
		f := filepath.Join(p, rel)
		if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	sum, size, err := nar.Hash(p)
	if err != nil {
		t.Fatal(err)
	}
	var refs []string
	for _, r := range it.Refs {
		refs = append(refs, s.Path(r))
	}
	if err := nixdb.Register(db, p, "sha256:"+hex.EncodeToString(sum[:]), size, filepath.Join(s.Dir, strings.Repeat("0", 32)+"-"+it.Name+".drv"), refs); err != nil {
		t.Fatal(err)
	}
}

// Writer opens the database for writing (creating it when missing); the
// caller closes it.
func (s *Store) Writer(t testing.TB) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+s.DB+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	return db
}

// Exec runs one statement on the database.
func (s *Store) Exec(t testing.TB, query string, args ...any) {
	t.Helper()
	db := s.Writer(t)
	defer db.Close()
	if _, err := db.Exec(query, args...); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
}
