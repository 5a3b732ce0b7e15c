package store

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
}

// Store reads a store folder and, when one is in use, its database. It
// never writes to either.
type Store struct {
	// filled in by the implementation
}

// DefaultDir is $NIX_STORE_DIR when set, else /gnu/store when it exists,
// else /nix/store.
func DefaultDir() Dir { panic("unimplemented") }

// Open opens a store for reading.
func Open(opts Options) (*Store, error) { panic("unimplemented") }

// Dir is the store's folder.
func (s *Store) Dir() Dir { panic("unimplemented") }

// DBPath is the database in use, or "" when references come from scanning.
func (s *Store) DBPath() string { panic("unimplemented") }

// References lists the store items p refers to (itself included when it
// does), sorted.
func (s *Store) References(p Path) ([]Path, error) { panic("unimplemented") }

// Deriver is the deriver recorded for p, or "" when unknown.
func (s *Store) Deriver(p Path) (string, error) { panic("unimplemented") }

// Closure is every item reachable from roots, dependencies first, in the
// order `nix-store -qR` prints and `nix-store --export` writes.
func (s *Store) Closure(roots ...Path) ([]Path, error) { panic("unimplemented") }

// Close releases the database.
func (s *Store) Close() error { panic("unimplemented") }
