package store

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/storepack/storepack/store/nar"
)

// openModes opens the fake store through its database and by scanning.
func openModes(t *testing.T, fs *fakeStore) map[string]*Store {
	t.Helper()
	t.Setenv("NIX_STATE_DIR", "")
	out := map[string]*Store{}
	for mode, opts := range map[string]Options{
		"db":   {Dir: fs.dir, DB: fs.db},
		"auto": {Dir: fs.dir},
		"none": {Dir: fs.dir, DB: DBNone},
	} {
		s, err := Open(opts)
		if err != nil {
			t.Fatalf("Open(%+v): %v", opts, err)
		}
		t.Cleanup(func() { s.Close() })
		out[mode] = s
	}
	return out
}

func TestOpenModes(t *testing.T) {
	fs := makeFakeStore(t, diamond)
	stores := openModes(t, fs)
	for mode, want := range map[string]string{"db": fs.db, "auto": fs.db, "none": ""} {
		if got := stores[mode].DBPath(); got != want {
			t.Errorf("%s: DBPath() = %q, want %q", mode, got, want)
		}
		if got := stores[mode].Dir(); got != fs.dir {
			t.Errorf("%s: Dir() = %q, want %q", mode, got, fs.dir)
		}
	}
	// NIX_STATE_DIR moves the database "auto" looks for.
	t.Setenv("NIX_STATE_DIR", filepath.Join(fs.root, "elsewhere"))
	s, err := Open(Options{Dir: fs.dir, DB: DBAuto})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.DBPath() != "" {
		t.Errorf("with NIX_STATE_DIR and no database there, DBPath() = %q, want scanning", s.DBPath())
	}
}

func TestDefaults(t *testing.T) {
	t.Setenv("NIX_STORE_DIR", "/some/store")
	if got := DefaultDir(); got != "/some/store" {
		t.Errorf("DefaultDir() with NIX_STORE_DIR = %q", got)
	}
	t.Setenv("NIX_STORE_DIR", "")
	want := Dir("/nix/store")
	if fi, err := os.Stat("/gnu/store"); err == nil && fi.IsDir() {
		want = "/gnu/store"
	}
	if got := DefaultDir(); got != want {
		t.Errorf("DefaultDir() = %q, want %q", got, want)
	}
	for _, c := range []struct {
		state string
		dir   Dir
		want  string
	}{
		{"", "/gnu/store", "/var/guix/db/db.sqlite"},
		{"", "/nix/store", "/nix/var/nix/db/db.sqlite"},
		{"", "/tmp/root/nix/store", "/tmp/root/nix/var/nix/db/db.sqlite"},
		{"", "/tmp/root/gnu/store", "/tmp/root/var/guix/db/db.sqlite"},
		{"", "/opt/store", ""},
		{"/var/guix", "/gnu/store", "/var/guix/db/db.sqlite"},
		{"/state", "/opt/store", "/state/db/db.sqlite"},
	} {
		t.Setenv("NIX_STATE_DIR", c.state)
		if got := DefaultDB(c.dir); got != c.want {
			t.Errorf("NIX_STATE_DIR=%q DefaultDB(%q) = %q, want %q", c.state, c.dir, got, c.want)
		}
	}
}

// TestFakeStore reads the fabricated diamond through its database and by
// scanning: the same references, hashes and closures.
func TestFakeStore(t *testing.T) {
	fs := makeFakeStore(t, diamond)
	for mode, s := range openModes(t, fs) {
		t.Run(mode, func(t *testing.T) {
			for _, it := range diamond {
				p := fs.paths[it.name]
				refs, err := s.References(p)
				if err != nil {
					t.Fatal(err)
				}
				want := []string{}
				for _, r := range SortPaths(pathsOf(fs, it.refs)) {
					want = append(want, fs.names([]Path{r})[0])
				}
				if got := fs.names(refs); !slices.Equal(got, want) {
					t.Errorf("References(%s) = %q, want %q", it.name, got, want)
				}
				info, err := s.Info(p)
				if err != nil {
					t.Fatal(err)
				}
				sum, size, err := nar.Hash(string(p))
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(info.NarHash, sum[:]) || info.NarSize != size || info.Path != p {
					t.Errorf("Info(%s) = %x %d, want %x %d", it.name, info.NarHash, info.NarSize, sum, size)
				}
				drv, err := s.Deriver(p)
				if err != nil {
					t.Fatal(err)
				}
				wantDrv := it.deriver
				if mode == "none" {
					wantDrv = "" // scanning knows no derivers
				}
				if drv != wantDrv || info.Deriver != wantDrv {
					t.Errorf("Deriver(%s) = %q (Info %q), want %q", it.name, drv, info.Deriver, wantDrv)
				}
			}
			for _, c := range []struct {
				roots []string
				want  []string
			}{
				// The items of the closure in sorted order (lib, base,
				// right, left, top) are each visited after their
				// references: lib comes first although top reaches
				// right (and base) before it.
				{[]string{"top"}, []string{"lib", "base", "right", "left", "top"}},
				{[]string{"left", "right"}, []string{"lib", "base", "right", "left"}},
				{[]string{"right", "left", "right"}, []string{"lib", "base", "right", "left"}},
				{[]string{"other", "lib"}, []string{"lib", "base", "other"}},
				{[]string{"base"}, []string{"base"}},
				{nil, []string{}},
			} {
				got, err := s.Closure(pathsOf(fs, c.roots)...)
				if err != nil {
					t.Fatal(err)
				}
				if names := fs.names(got); !slices.Equal(names, c.want) {
					t.Errorf("Closure(%q) = %q, want %q", c.roots, names, c.want)
				}
			}
			items, err := s.Items()
			if err != nil {
				t.Fatal(err)
			}
			if len(items) != len(diamond) || !slices.IsSorted(items) {
				t.Errorf("Items() = %q", items)
			}
		})
	}
}

func pathsOf(fs *fakeStore, names []string) []Path {
	out := []Path{}
	for _, n := range names {
		out = append(out, fs.paths[n])
	}
	return out
}

// TestPathErrors checks that every problem with a path names it.
func TestPathErrors(t *testing.T) {
	fs := makeFakeStore(t, diamond)
	unregistered := fs.dir.Join(strings.Repeat("9", HashLen) + "-unregistered")
	if err := os.WriteFile(string(unregistered), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(string(fs.paths["lib"])); err != nil {
		t.Fatal(err)
	}
	gone := fs.dir.Join(strings.Repeat("8", HashLen) + "-gone")
	for mode, s := range openModes(t, fs) {
		for _, c := range []struct {
			path Path
			want string
			only string // the mode the case applies to, or ""
		}{
			{Path("/elsewhere/store/" + strings.Repeat("1", HashLen) + "-base"), "not in the store folder " + string(fs.dir), ""},
			{fs.dir.Join("not-a-store-path"), "not a valid store path", ""},
			{fs.dir.Join(strings.Repeat("e", HashLen) + "-x"), "not a valid store path", ""},
			{gone, "not on disk", ""},
			{fs.paths["lib"], "not on disk", ""},
			{unregistered, "not a valid path in the store database " + fs.db, "db"},
		} {
			if c.only != "" && c.only != mode {
				continue
			}
			for name, call := range map[string]func(Path) error{
				"References": func(p Path) error { _, err := s.References(p); return err },
				"Deriver":    func(p Path) error { _, err := s.Deriver(p); return err },
				"Info":       func(p Path) error { _, err := s.Info(p); return err },
				"Closure":    func(p Path) error { _, err := s.Closure(p); return err },
			} {
				err := call(c.path)
				if err == nil || !strings.Contains(err.Error(), string(c.path)) || !strings.Contains(err.Error(), c.want) {
					t.Errorf("%s: %s(%s) error %v: want it to name the path and say %q", mode, name, c.path, err, c.want)
				}
			}
		}
		// A closure whose member is missing names the member; scanning
		// just does not find it.
		if mode == "none" {
			continue
		}
		_, err := s.Closure(fs.paths["top"])
		if err == nil || !strings.Contains(err.Error(), string(fs.paths["lib"])) {
			t.Errorf("%s: Closure(top) with lib missing: %v", mode, err)
		}
	}
}

// TestDBErrors checks that a database that cannot be used is an error
// naming it, and what is wrong with it.
func TestDBErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	otherSchema := filepath.Join(dir, "other.sqlite")
	db := writableDB(t, otherSchema)
	if _, err := db.Exec("CREATE TABLE ValidPaths (x integer); CREATE TABLE Refs (referrer integer, reference integer)"); err != nil {
		t.Fatal(err)
	}
	db.Close()
	noRefs := filepath.Join(dir, "norefs.sqlite")
	db = writableDB(t, noRefs)
	if _, err := db.Exec("CREATE TABLE ValidPaths (id integer, path text, hash text, registrationTime integer, deriver text, narSize integer)"); err != nil {
		t.Fatal(err)
	}
	db.Close()
	fs := makeFakeStore(t, diamond)
	good, err := os.ReadFile(fs.db)
	if err != nil {
		t.Fatal(err)
	}
	corrupt := bytes.Clone(good)
	for i := 100; i < 4096 && i < len(corrupt); i++ {
		corrupt[i] = 0xa5 // page 1: the schema table
	}
	for _, c := range []struct {
		name, path, want string
	}{
		{"missing", filepath.Join(dir, "absent.sqlite"), "no such file"},
		{"folder", dir, "not a regular file"},
		{"empty", write("empty.sqlite", nil), "not a store database"},
		{"text", write("text.sqlite", []byte("this is not a database, just some text that is long enough\n")), "not a store database: not an SQLite database"},
		{"other schema", otherSchema, "not a store database: table ValidPaths has no column id"},
		{"no Refs", noRefs, "not a store database: it has no Refs table"},
		{"corrupt", write("corrupt.sqlite", corrupt), "corrupt"},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, err := Open(Options{Dir: fs.dir, DB: c.path})
			if err == nil {
				s.Close()
				t.Fatalf("Open(%s) worked, want an error", c.path)
			}
			if !strings.Contains(err.Error(), c.path) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("Open(%s) error %q: want it to name the file and say %q", c.path, err, c.want)
			}
		})
	}
}
