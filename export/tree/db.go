package tree

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/storepack/storepack/plan"
	"github.com/storepack/storepack/store"
)

// StoreDB is the store database that registers items (a closure), each
// with its NAR hash and size, references and deriver, at mtime (Unix
// seconds): the contents of a tree's database entry. It is made in a
// temporary folder (store.WriteDB needs a file) and read back; the same
// closure and time give the same bytes.
func StoreDB(items map[store.Path]*plan.Item, mtime int64) ([]byte, error) {
	infos := make([]store.PathInfo, 0, len(items))
	for _, it := range items {
		infos = append(infos, store.PathInfo{Path: it.Path, NarHash: it.NarHash[:], NarSize: it.NarSize, Deriver: it.Deriver, References: it.References})
	}
	dir, err := os.MkdirTemp("", "storepack-db-")
	if err != nil {
		return nil, fmt.Errorf("store database: %w", err)
	}
	defer os.RemoveAll(dir)
	file := filepath.Join(dir, "db.sqlite")
	if err := store.WriteDB(file, infos, time.Unix(mtime, 0)); err != nil {
		return nil, err
	}
	return os.ReadFile(file)
}
