// Package nixdb fabricates Nix store databases for tests: the schema of
// the tables Nix and Guix keep (and storepack reads), and the inserts
// that register an item with its references. It imports nothing of
// storepack but the schema's own package, so that the store package's own
// tests can use it.
package nixdb

import (
	"database/sql"
	"fmt"

	"github.com/storepack/storepack/internal/nixschema"
)

// Schema creates the tables of a store database, with the columns Nix and
// Guix use (nixschema.Schema).
const Schema = nixschema.Schema

// Create sets the database's journal mode ("WAL" or "DELETE") and
// creates the tables.
func Create(db *sql.DB, journalMode string) error {
	if _, err := db.Exec("PRAGMA journal_mode=" + journalMode); err != nil {
		return err
	}
	_, err := db.Exec(Schema)
	return err
}

// Register adds the valid path p with its NAR hash ("sha256:<hex>"),
// NAR size and deriver ("" for none), and its references, which must be
// registered already (or be p itself).
func Register(db *sql.DB, p, narHash string, narSize int64, deriver string, refs []string) error {
	var drv any
	if deriver != "" {
		drv = deriver
	}
	if _, err := db.Exec("INSERT INTO ValidPaths (path, hash, registrationTime, deriver, narSize) VALUES (?, ?, 1, ?, ?)",
		p, narHash, drv, narSize); err != nil {
		return fmt.Errorf("registering %s: %w", p, err)
	}
	for _, r := range refs {
		if _, err := db.Exec(`INSERT INTO Refs (referrer, reference) SELECT a.id, b.id FROM ValidPaths a, ValidPaths b
			WHERE a.path = ? AND b.path = ?`, p, r); err != nil {
			return fmt.Errorf("registering %s -> %s: %w", p, r, err)
		}
	}
	return nil
}
