package binarycache

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/storepack/storepack/store"
	"github.com/storepack/storepack/store/nar"
)

// orderCache is a folder cache that checks, as each narinfo is put, that
// the narinfos of its references are already there, and counts the puts
// in flight at once (each takes a little while, as a request does).
type orderCache struct {
	Dir
	refs map[string][]store.Path // narinfo -> the item's references

	mu             sync.Mutex
	inFlight, most int
	errs           []string
}

func (c *orderCache) PutNew(ctx context.Context, rel string, data []byte) (bool, error) {
	c.mu.Lock()
	c.inFlight++
	c.most = max(c.most, c.inFlight)
	for _, r := range c.refs[rel] {
		if name := r.HashPart() + ".narinfo"; name != rel {
			if _, err := os.Stat(c.Dir.file(name)); err != nil {
				c.errs = append(c.errs, fmt.Sprintf("%s put before %s, which it refers to", rel, name))
			}
		}
	}
	c.mu.Unlock()
	time.Sleep(2 * time.Millisecond)
	created, err := c.Dir.PutNew(ctx, rel, data)
	c.mu.Lock()
	c.inFlight--
	c.mu.Unlock()
	return created, err
}

// TestNarInfosAfterTheirReferences publishes 60 items (each referring to
// the two before it, every tenth to none and to itself): narinfos go up
// several at once, and none before those of its references.
func TestNarInfosAfterTheirReferences(t *testing.T) {
	fsDir := t.TempDir()
	var items []Item
	refs := map[string][]store.Path{}
	for i := range 60 {
		p := testPath(testStore, fmt.Sprint("chain", i), fmt.Sprintf("item-%d", i))
		dir := filepath.Join(fsDir, p.Base())
		if err := os.WriteFile(dir, []byte(strings.Repeat(fmt.Sprint(i), 100)), 0o644); err != nil {
			t.Fatal(err)
		}
		it := Item{Path: p, FSPath: dir}
		if i%10 == 0 {
			it.References = []store.Path{p}
		} else {
			it.References = []store.Path{items[i-1].Path}
			if i >= 2 {
				it.References = append(it.References, items[i-2].Path)
			}
		}
		h, n, err := nar.Hash(dir)
		if err != nil {
			t.Fatal(err)
		}
		it.NarHash, it.NarSize = h, n
		refs[p.HashPart()+".narinfo"] = it.References
		items = append(items, it)
	}
	c := &orderCache{Dir: Dir(t.TempDir()), refs: refs}
	res, err := WriteCache(context.Background(), c, items, Options{StoreDir: testStore, Compression: CompressionNone})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range c.errs {
		t.Error(e)
	}
	if got := len(res.Entries); got != len(items) {
		t.Errorf("%d entries, want %d", got, len(items))
	}
	for i, e := range res.Entries {
		if e.NarInfo == nil || e.NarInfo.StorePath != items[i].Path || !e.Written {
			t.Errorf("entry %d is %+v, want the narinfo of %s, written", i, e, items[i].Path)
		}
	}
	if c.most < 2 {
		t.Errorf("at most %d narinfo put at once: they go one at a time", c.most)
	}
}
