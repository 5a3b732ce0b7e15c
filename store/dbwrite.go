package store

import (
	"github.com/storepack/storepack/internal/nixschema"

	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// TreeDB is where a file system tree that holds items of store folder d
// keeps their database, as an absolute path in the tree: Guix's
// /var/guix/db/db.sqlite for /gnu/store, else Nix's
// /nix/var/nix/db/db.sqlite (Nix's state folder does not follow its store
// folder).
func TreeDB(d Dir) string {
	if d == "/gnu/store" {
		return "/var/guix/db/db.sqlite"
	}
	return "/nix/var/nix/db/db.sqlite"
}

// WriteDB writes a new store database at file (which must not exist)
// registering items as valid paths, each with its NAR hash and size,
// deriver and references (which must be among items, or the item itself),
// all registered at time t. The file's bytes depend only on the items, t
// and the SQLite library: items are registered sorted by path, in one
// transaction, in rollback-journal mode with 4096-byte pages, so the same
// closure gives the same file.
func WriteDB(file string, items []PathInfo, t time.Time) (err error) {
	abs, err := filepath.Abs(file)
	if err != nil {
		return err
	}
	if _, err := os.Lstat(abs); err == nil {
		return fmt.Errorf("store database %s: already exists", file)
	}
	sorted := slices.Clone(items)
	slices.SortFunc(sorted, func(a, b PathInfo) int { return strings.Compare(string(a.Path), string(b.Path)) })
	ids := make(map[Path]int64, len(sorted))
	for i, it := range sorted {
		if _, dup := ids[it.Path]; dup {
			return fmt.Errorf("store database %s: %s is registered twice", file, it.Path)
		}
		if len(it.NarHash) != 32 || it.NarSize <= 0 {
			return fmt.Errorf("store database %s: %s has no NAR hash and size", file, it.Path)
		}
		ids[it.Path] = int64(i + 1)
	}
	for _, it := range sorted {
		for _, r := range it.References {
			if _, ok := ids[r]; !ok {
				return fmt.Errorf("store database %s: %s refers to %s, which is not registered", file, it.Path, r)
			}
		}
	}

	db, err := sql.Open("sqlite", sqliteURI(abs)+"?_pragma=journal_mode(DELETE)&_pragma=synchronous(OFF)")
	if err != nil {
		return fmt.Errorf("store database %s: %w", file, err)
	}
	db.SetMaxOpenConns(1)
	defer func() {
		if cerr := db.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("store database %s: %w", file, cerr)
		}
		if err != nil {
			os.Remove(abs)
			os.Remove(abs + "-journal")
		}
	}()
	if _, err := db.Exec("PRAGMA page_size = 4096"); err != nil {
		return fmt.Errorf("store database %s: %w", file, err)
	}
	tx, err := db.Begin()
	if err != nil {
		return fmt.Errorf("store database %s: %w", file, err)
	}
	defer tx.Rollback()
	if _, err := tx.Exec(nixschema.Schema); err != nil {
		return fmt.Errorf("store database %s: %w", file, err)
	}
	addPath, err := tx.Prepare("INSERT INTO ValidPaths (id, path, hash, registrationTime, deriver, narSize) VALUES (?, ?, ?, ?, ?, ?)")
	if err != nil {
		return fmt.Errorf("store database %s: %w", file, err)
	}
	addRef, err := tx.Prepare("INSERT INTO Refs (referrer, reference) VALUES (?, ?)")
	if err != nil {
		return fmt.Errorf("store database %s: %w", file, err)
	}
	for _, it := range sorted {
		var deriver any
		if it.Deriver != "" {
			deriver = it.Deriver
		}
		if _, err := addPath.Exec(ids[it.Path], string(it.Path), "sha256:"+Hash(it.NarHash).Hex(), t.Unix(), deriver, it.NarSize); err != nil {
			return fmt.Errorf("store database %s: registering %s: %w", file, it.Path, err)
		}
	}
	for _, it := range sorted {
		refs := slices.Clone(it.References)
		slices.Sort(refs)
		for _, r := range slices.Compact(refs) {
			if _, err := addRef.Exec(ids[it.Path], ids[r]); err != nil {
				return fmt.Errorf("store database %s: registering %s -> %s: %w", file, it.Path, r, err)
			}
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store database %s: %w", file, err)
	}
	return nil
}
