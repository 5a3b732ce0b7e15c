package store

import (
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
)

// dbFolderFiles lists the files next to a database.
func dbFolderFiles(t *testing.T, db string) []string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Dir(db))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

// closureNames opens the fake store's database, reads top's closure and
// closes the store.
func closureNames(t *testing.T, fs *fakeStore, root string) []string {
	t.Helper()
	s, err := Open(Options{Dir: fs.dir, DB: fs.db})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, err := s.Closure(fs.paths[root])
	if err != nil {
		t.Fatal(err)
	}
	return fs.names(got)
}

// TestReadOnlyFolder reads a WAL-mode database (as Nix leaves it when no
// one has it open) in a folder without write permission: it works and
// leaves no -wal or -shm file behind, even for root, who could write there.
func TestReadOnlyFolder(t *testing.T) {
	fs := makeFakeStore(t, diamond)
	if got := dbFolderFiles(t, fs.db); !slices.Equal(got, []string{"db.sqlite"}) {
		t.Fatalf("fixture folder holds %q", got)
	}
	dbDir := filepath.Dir(fs.db)
	if err := os.Chmod(dbDir, 0o555); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(dbDir, 0o755) })
	if got, want := closureNames(t, fs, "top"), []string{"lib", "base", "right", "left", "top"}; !slices.Equal(got, want) {
		t.Errorf("closure = %q, want %q", got, want)
	}
	if got := dbFolderFiles(t, fs.db); !slices.Equal(got, []string{"db.sqlite"}) {
		t.Errorf("after reading, the database folder holds %q", got)
	}
}

// TestWriterHolds reads while another connection writes: a transaction in
// progress does not block reading and is not seen; what it commits is.
func TestWriterHolds(t *testing.T) {
	ctx := context.Background()
	for _, order := range []string{"writer first", "reader first"} {
		t.Run(order, func(t *testing.T) {
			fs := makeFakeStore(t, diamond)
			newItem := fs.dir.Join(strings.Repeat("6", HashLen) + "-new")
			if err := os.WriteFile(string(newItem), []byte(string(fs.paths["top"])), 0o644); err != nil {
				t.Fatal(err)
			}
			var s *Store
			open := func() {
				var err error
				if s, err = Open(Options{Dir: fs.dir, DB: fs.db}); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { s.Close() })
			}
			if order == "reader first" {
				open() // no -wal yet
			}
			w := writableDB(t, fs.db)
			defer w.Close()
			conn, err := w.Conn(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
				t.Fatal(err)
			}
			if _, err := conn.ExecContext(ctx, "INSERT INTO ValidPaths (path, hash, registrationTime, narSize) VALUES (?, 'sha256:"+strings.Repeat("0", 64)+"', 2, 8)", string(newItem)); err != nil {
				t.Fatal(err)
			}
			if order == "writer first" {
				open()
			}
			if _, err := s.Info(fs.paths["top"]); err != nil {
				t.Fatalf("reading while a write transaction is open: %v", err)
			}
			if _, err := s.Info(newItem); err == nil || !strings.Contains(err.Error(), "not a valid path") {
				t.Fatalf("an uncommitted path: %v", err)
			}
			if _, err := conn.ExecContext(ctx, "COMMIT"); err != nil {
				t.Fatal(err)
			}
			info, err := s.Info(newItem)
			if err != nil {
				t.Fatalf("a committed path: %v", err)
			}
			if info.NarSize != 8 {
				t.Errorf("committed path's NarSize = %d, want 8", info.NarSize)
			}
		})
	}
}

// TestUnprivileged reads databases as a user who cannot write the folder
// (or the files a writer made there): as nobody when the test runs as root,
// else as the current user.
func TestUnprivileged(t *testing.T) {
	fs := makeFakeStore(t, diamond)
	helper := func(t *testing.T, want string) {
		t.Helper()
		if os.Geteuid() != 0 {
			got := unprivilegedRead(fs.dir, fs.db, fs.paths["top"])
			if !strings.Contains(got, want) {
				t.Errorf("read as uid %d: %q, want %q", os.Geteuid(), got, want)
			}
			return
		}
		// Let nobody reach the files, and run a copy of this test binary.
		for d := fs.root; d != "/" && d != os.TempDir(); d = filepath.Dir(d) {
			if err := os.Chmod(d, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		self, err := os.Executable()
		if err != nil {
			t.Fatal(err)
		}
		bin := filepath.Join(fs.root, "store.test")
		copyFile(t, self, bin)
		cmd := exec.Command(bin)
		cmd.Env = append(os.Environ(), "STOREPACK_STORE_HELPER="+strings.Join([]string{string(fs.dir), fs.db, string(fs.paths["top"])}, "\n"))
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s as nobody: %v\n%s", bin, err, out)
		}
		if !strings.Contains(string(out), want) {
			t.Errorf("read as nobody: %s\nwant %q", out, want)
		}
	}
	wantClosure := "closure: " + strings.Join(pathStrings(pathsOf(fs, []string{"lib", "base", "right", "left", "top"})), " ")
	t.Run("no writer", func(t *testing.T) {
		helper(t, wantClosure)
		if got := dbFolderFiles(t, fs.db); !slices.Equal(got, []string{"db.sqlite"}) {
			t.Errorf("after reading, the database folder holds %q", got)
		}
	})
	t.Run("writer holds it", func(t *testing.T) {
		w := writableDB(t, fs.db)
		defer w.Close()
		// A committed change that stays in the -wal file while w is open.
		if _, err := w.Exec("UPDATE ValidPaths SET narSize = narSize WHERE 0"); err != nil {
			t.Fatal(err)
		}
		if _, err := w.Exec("PRAGMA wal_autocheckpoint=0"); err != nil {
			t.Fatal(err)
		}
		if _, err := w.Exec("DELETE FROM Refs WHERE referrer = (SELECT id FROM ValidPaths WHERE path = ?)", string(fs.paths["top"])); err != nil {
			t.Fatal(err)
		}
		helper(t, "closure: "+string(fs.paths["top"])+"\n")
	})
	t.Run("unreadable", func(t *testing.T) {
		if os.Geteuid() != 0 {
			t.Skip("only root can make a file another user cannot read")
		}
		if err := os.Chmod(fs.db, 0o600); err != nil {
			t.Fatal(err)
		}
		defer os.Chmod(fs.db, 0o644)
		helper(t, "error: store database "+fs.db+": permission denied")
	})
}

func pathStrings(ps []Path) []string {
	var out []string
	for _, p := range ps {
		out = append(out, string(p))
	}
	return out
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// unprivilegedRead reads root's closure, reporting it or the error.
func unprivilegedRead(dir Dir, db string, root Path) string {
	s, err := Open(Options{Dir: dir, DB: db})
	if err != nil {
		return "error: " + err.Error() + "\n"
	}
	defer s.Close()
	c, err := s.Closure(root)
	if err != nil {
		return "error: " + err.Error() + "\n"
	}
	return "closure: " + strings.Join(pathStrings(c), " ") + "\n"
}

// TestMain runs TestUnprivileged's other half when TestUnprivileged starts
// this test binary as another user.
func TestMain(m *testing.M) {
	if env := os.Getenv("STOREPACK_STORE_HELPER"); env != "" {
		f := strings.Split(env, "\n")
		os.Stdout.WriteString(unprivilegedRead(Dir(f[0]), f[1], Path(f[2])))
		os.Exit(0)
	}
	os.Exit(m.Run())
}
