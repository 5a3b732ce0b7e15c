package store

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"

	"github.com/storepack/storepack/store/nar"
)

// DB modes for Options.DB besides a database file's path.
const (
	// DBAuto uses the store's database when one is found, else scanning.
	DBAuto = "auto"
	// DBNone finds references by scanning store items.
	DBNone = "none"
)

// Options says which store to read and how to find references.
type Options struct {
	// Dir is the store folder; empty means DefaultDir().
	Dir Dir
	// DB is DBAuto (the default when empty), DBNone, or a database path.
	DB string
	// Root, when set, is the folder a chroot store lives in, as in
	// `nix --store ROOT`: item Dir/x is read from ROOT/Dir/x, and the
	// default database is looked for under ROOT too. Store paths keep
	// their logical folder.
	Root string
}

// PathInfo is what a store knows about one of its items.
type PathInfo struct {
	// Path is the item.
	Path Path
	// NarHash is the SHA-256 digest (32 bytes) of the item's NAR
	// serialisation: from the database, or computed while scanning the
	// item for references. It is nil when unknown (a database row without
	// a NAR size).
	NarHash []byte
	// NarSize is the length of the item's NAR serialisation; 0 when
	// NarHash is nil.
	NarSize int64
	// Deriver is the derivation recorded as having built the item, or ""
	// when unknown (always "" without a database).
	Deriver string
	// References are the items it refers to, sorted, itself included when
	// it refers to itself.
	References []Path
}

// Store reads a store folder and, when one is in use, its database. It
// never writes to either. It is safe for concurrent use.
type Store struct {
	dir Dir
	db  *database // nil when scanning

	root string // chroot folder, "" for none

	mu    sync.Mutex
	info  map[Path]*PathInfo
	items []Path    // candidates for scanning, read once
	keys  *scanKeys // their hash parts
}

// DefaultDir is $NIX_STORE_DIR when set, else /gnu/store when it exists,
// else /nix/store.
func DefaultDir() Dir {
	if d := os.Getenv("NIX_STORE_DIR"); d != "" {
		return Dir(d)
	}
	if fi, err := os.Stat("/gnu/store"); err == nil && fi.IsDir() {
		return "/gnu/store"
	}
	return "/nix/store"
}

// DefaultDB is the database "auto" looks for with store folder d:
// $NIX_STATE_DIR/db/db.sqlite when NIX_STATE_DIR is set; else, for a folder
// <root>/gnu/store, <root>/var/guix/db/db.sqlite (Guix's layout), and for
// <root>/nix/store, <root>/nix/var/nix/db/db.sqlite (Nix's, also for a
// chroot store such as `nix --store /tmp/root`); "" for other folders.
func DefaultDB(d Dir) string {
	if s := os.Getenv("NIX_STATE_DIR"); s != "" {
		return filepath.Join(s, "db", "db.sqlite")
	}
	for _, std := range []Dir{"/gnu/store", "/nix/store"} {
		if root, ok := strings.CutSuffix(string(d), string(std)); ok {
			return root + TreeDB(std)
		}
	}
	return ""
}

// Open opens a store for reading. With DB "" or DBAuto it uses DefaultDB
// when that file exists and scans otherwise; with DBNone it scans; any
// other value is a database file that must open. A database is opened
// read-only and its schema checked.
func Open(opts Options) (*Store, error) {
	d := opts.Dir
	if d == "" {
		d = DefaultDir()
	}
	d, err := ParseDir(string(d))
	if err != nil {
		return nil, err
	}
	root := ""
	if opts.Root != "" {
		if root, err = filepath.Abs(opts.Root); err != nil {
			return nil, err
		}
		if root == "/" {
			root = ""
		}
	}
	s := &Store{dir: d, root: root, info: map[Path]*PathInfo{}}
	dbPath := ""
	switch opts.DB {
	case "", DBAuto:
		if p := DefaultDB(d); p != "" {
			p = s.root + p
			if _, err := os.Stat(p); err == nil {
				dbPath = p
			} else if !errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("store database %s: %w", p, bare(err))
			}
		}
	case DBNone:
	default:
		dbPath = opts.DB
	}
	if dbPath != "" {
		if s.db, err = openDB(dbPath); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Dir is the store's folder.
func (s *Store) Dir() Dir { return s.dir }

// FSPath is where the files of p are read from: p itself, or p under the
// store's root.
func (s *Store) FSPath(p Path) string { return s.root + string(p) }

// DBPath is the database in use, or "" when references come from scanning.
func (s *Store) DBPath() string {
	if s.db == nil {
		return ""
	}
	return s.db.path
}

// References lists the store items p refers to (itself included when it
// does), sorted.
func (s *Store) References(p Path) ([]Path, error) {
	info, err := s.Info(p)
	if err != nil {
		return nil, err
	}
	return slices.Clone(info.References), nil
}

// Deriver is the deriver recorded for p, or "" when unknown.
func (s *Store) Deriver(p Path) (string, error) {
	info, err := s.Info(p)
	if err != nil {
		return "", err
	}
	return info.Deriver, nil
}

// Info describes p: from the database when one is in use (an error when p
// is not a valid path there), else by scanning p's NAR serialisation for the
// hash parts of the items in the store folder, hashing it on the way.
// p must be an item of the store folder and exist on disk. Results are
// cached; the returned value must not be modified.
func (s *Store) Info(p Path) (*PathInfo, error) {
	if _, err := s.dir.Parse(string(p)); err != nil {
		return nil, err
	}
	s.mu.Lock()
	info, ok := s.info[p]
	s.mu.Unlock()
	if ok {
		return info, nil
	}
	if _, err := os.Lstat(s.FSPath(p)); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%s: not on disk in the store folder %s", p, s.dir)
		}
		return nil, fmt.Errorf("%s: %w", p, bare(err))
	}
	var err error
	if s.db != nil {
		info, err = s.db.info(p)
	} else {
		info, err = s.scan(p)
	}
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.info[p] = info
	s.mu.Unlock()
	return info, nil
}

// Items lists the items in the store folder, sorted: every entry whose
// name is a valid store path base name. They are the candidates scanning
// looks for. The list is read once per Store.
func (s *Store) Items() ([]Path, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.loadItems(); err != nil {
		return nil, err
	}
	return slices.Clone(s.items), nil
}

// loadItems reads the store folder once; s.mu must be held.
func (s *Store) loadItems() error {
	if s.items != nil {
		return nil
	}
	f, err := os.Open(s.root + string(s.dir))
	if err != nil {
		return fmt.Errorf("store folder %s: %w", s.dir, bare(err))
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return fmt.Errorf("store folder %s: %w", s.dir, err)
	}
	items := make([]Path, 0, len(names))
	for _, n := range names {
		if ValidBase(n) == nil {
			items = append(items, s.dir.Join(n))
		}
	}
	slices.Sort(items)
	s.items, s.keys = items, newScanKeys(items)
	return nil
}

// scan finds p's references by scanning its NAR serialisation, hashing it
// at the same time.
func (s *Store) scan(p Path) (*PathInfo, error) {
	s.mu.Lock()
	err := s.loadItems()
	keys := s.keys
	s.mu.Unlock()
	if err != nil {
		return nil, err
	}
	sc := newScanner(keys)
	h := sha256.New()
	cw := &countWriter{}
	if err := nar.Dump(io.MultiWriter(sc, h, cw), s.FSPath(p)); err != nil {
		return nil, fmt.Errorf("scanning %s for references: %w", p, err)
	}
	return &PathInfo{Path: p, NarHash: h.Sum(nil), NarSize: cw.n, References: sc.References()}, nil
}

type countWriter struct{ n int64 }

func (c *countWriter) Write(b []byte) (int, error) {
	c.n += int64(len(b))
	return len(b), nil
}

// Closure is every item reachable from roots, dependencies first, in the
// order `nix-store -qR` prints and `nix-store --export` writes.
// Without a database, the items are scanned a level at a time, several at
// once.
func (s *Store) Closure(roots ...Path) ([]Path, error) {
	if s.db == nil {
		s.prefetch(roots)
	}
	return ClosureOrder(roots, s.References)
}

// prefetch scans the closure of roots into the cache, GOMAXPROCS items at
// a time. Errors are left for ClosureOrder to meet again and report.
func (s *Store) prefetch(roots []Path) {
	workers := runtime.GOMAXPROCS(0)
	if workers < 2 {
		return
	}
	seen := map[Path]bool{}
	level := SortPaths(roots)
	for len(level) > 0 {
		infos := make([]*PathInfo, len(level))
		next := make(chan int)
		var wg sync.WaitGroup
		for range min(workers, len(level)) {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range next {
					infos[i], _ = s.Info(level[i])
				}
			}()
		}
		for i, p := range level {
			seen[p] = true
			next <- i
		}
		close(next)
		wg.Wait()
		var more []Path
		for _, info := range infos {
			if info == nil {
				continue
			}
			for _, r := range info.References {
				if !seen[r] {
					seen[r] = true
					more = append(more, r)
				}
			}
		}
		level = SortPaths(more)
	}
}

// Close releases the database.
func (s *Store) Close() error {
	if s.db == nil {
		return nil
	}
	return s.db.close()
}
