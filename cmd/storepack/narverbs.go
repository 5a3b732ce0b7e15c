package main

import (
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sync"

	"github.com/storepack/storepack/store"
	"github.com/storepack/storepack/store/nar"
)

var dumpVerb = &verb{
	name:     "dump",
	operands: "PATH",
	summary:  "Write the NAR serialisation of any file, folder or symlink to stdout, as nix-store --dump.",
	min:      1, max: 1,
	setup: func(fs *flag.FlagSet) func(*env, []string) error {
		return func(e *env, args []string) error {
			return pathError(args[0], nar.Dump(e.stdout, args[0]))
		}
	},
}

var hashVerb = &verb{
	name:     "hash",
	operands: "[--base32] PATH...",
	summary:  "Print the sha256 of the NAR serialisation of each path, a line each, as nix-hash --type sha256 [--base32]; several paths are hashed at once.",
	min:      1, max: -1,
	setup: func(fs *flag.FlagSet) func(*env, []string) error {
		base32 := fs.Bool("base32", false, "print the hash in Nix base32 instead of hexadecimal")
		return func(e *env, args []string) error {
			sums, err := hashAll(args)
			if err != nil {
				return err
			}
			for _, sum := range sums {
				if *base32 {
					fmt.Fprintln(e.stdout, store.Encode32(sum[:]))
				} else {
					fmt.Fprintln(e.stdout, hex.EncodeToString(sum[:]))
				}
			}
			return nil
		}
	},
}

// hashAll hashes the NARs of paths, GOMAXPROCS at a time (each hash
// already reads ahead of itself on a goroutine of its own), in order.
func hashAll(paths []string) ([]store.Hash, error) {
	sums := make([]store.Hash, len(paths))
	errs := make([]error, len(paths))
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), len(paths)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				sum, _, err := nar.Hash(paths[i])
				if err != nil {
					err = pathError(paths[i], err)
				}
				sums[i], errs[i] = sum, err
			}
		}()
	}
	for i := range paths {
		next <- i
	}
	close(next)
	wg.Wait()
	return sums, errors.Join(errs...)
}

var addVerb = &verb{
	name:     "add",
	operands: "[--store DIR] [--name NAME] FILE",
	summary:  "Print the store path nix-store --add FILE would give; nothing is written.",
	min:      1, max: 1,
	setup: func(fs *flag.FlagSet) func(*env, []string) error {
		sf := addStoreFlags(fs, false)
		name := fs.String("name", "", "the store path's `NAME` (default: FILE's base name)")
		return func(e *env, args []string) error {
			d, err := sf.storeDir()
			if err != nil {
				return err
			}
			file := args[0]
			n := *name
			if n == "" {
				abs, err := filepath.Abs(file)
				if err != nil {
					return pathError(file, err)
				}
				n = filepath.Base(abs)
			}
			if err := store.ValidName(n); err != nil {
				return pathError(file, fmt.Errorf("cannot be added under the name %q: %w", n, err))
			}
			sum, _, err := nar.Hash(file)
			if err != nil {
				return pathError(file, err)
			}
			p, err := d.SourcePath(sum[:], n, nil, false)
			if err != nil {
				return pathError(file, err)
			}
			fmt.Fprintln(e.stdout, p)
			return nil
		}
	},
}

var restoreVerb = &verb{
	name:     "restore",
	operands: "DIR",
	summary:  "Read a NAR from stdin and recreate its tree at DIR, which must not exist yet.",
	min:      1, max: 1,
	setup: func(*flag.FlagSet) func(*env, []string) error {
		return func(e *env, args []string) error {
			dir := args[0]
			if _, err := os.Lstat(dir); err == nil {
				return fmt.Errorf("%s: already exists; restore creates it", dir)
			} else if !errors.Is(err, fs.ErrNotExist) {
				return pathError(dir, err)
			}
			return pathError(dir, nar.Restore(e.stdin, dir))
		}
	},
}
