package main

import (
	"flag"
	"fmt"

	"github.com/storepack/storepack/export"
	"github.com/storepack/storepack/store"
)

// storeFlags are the flags of verbs that read a store.
type storeFlags struct {
	dir string
	db  string
}

// addStoreFlags registers --store and, when withDB, --db on fs.
func addStoreFlags(fs *flag.FlagSet, withDB bool) *storeFlags {
	f := &storeFlags{db: store.DBAuto}
	fs.StringVar(&f.dir, "store", string(store.DefaultDir()), "the store folder `DIR`")
	if withDB {
		fs.StringVar(&f.db, "db", store.DBAuto, "where references come from: `auto|none|PATH` (auto: the store's database when found, else scanning; none: scanning; PATH: that database)")
	}
	return f
}

// storeDir validates --store.
func (f *storeFlags) storeDir() (store.Dir, error) {
	return store.ParseDir(f.dir)
}

// open opens the store --store and --db name.
func (f *storeFlags) open() (*store.Store, error) {
	d, err := f.storeDir()
	if err != nil {
		return nil, err
	}
	s, err := store.Open(store.Options{Dir: d, DB: f.db})
	if err != nil {
		if f.db != store.DBAuto && f.db != store.DBNone {
			return nil, pathError(f.db, err)
		}
		return nil, err
	}
	return s, nil
}

// closureOf opens the store and computes the closure of the store paths
// args, dependencies first.
func (f *storeFlags) closureOf(args []string) (*store.Store, []store.Path, error) {
	s, err := f.open()
	if err != nil {
		return nil, nil, err
	}
	roots := make([]store.Path, len(args))
	for i, a := range args {
		if roots[i], err = s.Dir().Parse(a); err != nil {
			s.Close()
			return nil, nil, pathError(a, err)
		}
	}
	closure, err := s.Closure(roots...)
	if err != nil {
		s.Close()
		return nil, nil, err
	}
	return s, closure, nil
}

var closureVerb = &verb{
	name:     "closure",
	operands: "[--store DIR] [--db auto|none|PATH] PATH...",
	summary:  "Print the closure of store paths, one path a line, dependencies first, as nix-store -qR.",
	min:      1, max: -1,
	setup: func(fs *flag.FlagSet) func(*env, []string) error {
		sf := addStoreFlags(fs, true)
		return func(e *env, args []string) error {
			s, closure, err := sf.closureOf(args)
			if err != nil {
				return err
			}
			defer s.Close()
			for _, p := range closure {
				fmt.Fprintln(e.stdout, p)
			}
			return nil
		}
	},
}

var bundleVerb = &verb{
	name:     "bundle",
	operands: "[--store DIR] [--db auto|none|PATH] PATH...",
	summary:  "Write the export bundle of the closure of store paths to stdout, as nix-store --export $(nix-store -qR PATH...).",
	min:      1, max: -1,
	setup: func(fs *flag.FlagSet) func(*env, []string) error {
		sf := addStoreFlags(fs, true)
		return func(e *env, args []string) error {
			s, closure, err := sf.closureOf(args)
			if err != nil {
				return err
			}
			defer s.Close()
			return export.WriteStoreBundle(e.stdout, s, closure)
		}
	},
}
