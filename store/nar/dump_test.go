package nar_test

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/storepack/storepack/store/nar"
)

// TestDumpRefuses checks that what a NAR cannot hold, or what cannot be
// read, fails Dump and Hash with an error naming the file.
func TestDumpRefuses(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, p string) // creates the bad node at p
		want  string                       // substring of the error
		is    error                        // errors.Is target, or nil
	}{
		{"FIFO", func(t *testing.T, p string) {
			if err := syscall.Mkfifo(p, 0o644); err != nil {
				t.Fatal(err)
			}
		}, "a FIFO cannot be stored in a NAR", nil},
		{"socket", func(t *testing.T, p string) {
			l, err := net.Listen("unix", p)
			if err != nil {
				t.Fatal(err)
			}
			l.(*net.UnixListener).SetUnlinkOnClose(false)
			t.Cleanup(func() { l.Close() })
		}, "a socket cannot be stored in a NAR", nil},
		{"unreadable file", func(t *testing.T, p string) {
			if err := os.WriteFile(p, []byte("secret"), 0o000); err != nil {
				t.Fatal(err)
			}
		}, "permission denied", fs.ErrPermission},
		{"unreadable folder", func(t *testing.T, p string) {
			if err := os.Mkdir(p, 0o000); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.Chmod(p, 0o755) })
		}, "permission denied", fs.ErrPermission},
		{"missing root", func(t *testing.T, p string) {}, "no such file", fs.ErrNotExist},
	}
	for _, tc := range tests {
		for _, nested := range []bool{false, true} {
			name := tc.name
			if nested {
				if tc.is == fs.ErrNotExist {
					continue // a listed folder holds no missing file
				}
				name += " in a folder"
			}
			t.Run(name, func(t *testing.T) {
				// Short paths: a socket's path must fit in 108 bytes.
				base, err := os.MkdirTemp("", "nar")
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { os.RemoveAll(base) })
				root := filepath.Join(base, "bad")
				p := root
				if nested {
					if err := os.Mkdir(root, 0o755); err != nil {
						t.Fatal(err)
					}
					os.WriteFile(filepath.Join(root, "a-fine-file"), []byte("ok"), 0o644)
					p = filepath.Join(root, "x")
				}
				tc.setup(t, p)
				if tc.is == fs.ErrPermission && os.Geteuid() == 0 {
					// Root reads anything: dump as nobody in a child process.
					msg := dumpAsNobody(t, base, root)
					t.Logf("as nobody: %s", msg)
					if !strings.Contains(msg, p) || !strings.Contains(msg, tc.want) {
						t.Errorf("error %q, want it to name %s and say %q", msg, p, tc.want)
					}
					return
				}
				err = nar.Dump(io.Discard, root)
				if err == nil {
					t.Fatal("Dump succeeded")
				}
				if !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), tc.want) {
					t.Errorf("error %q, want it to name %s and say %q", err, p, tc.want)
				}
				if tc.is != nil && !errors.Is(err, tc.is) {
					t.Errorf("errors.Is(%v, %v) is false", err, tc.is)
				}
				if _, _, herr := nar.Hash(root); herr == nil || herr.Error() != err.Error() {
					t.Errorf("Hash error %v, Dump error %v", herr, err)
				}
			})
		}
	}
}

// dumpEnv names the path a child test process dumps (see TestMain).
const dumpEnv = "NAR_TEST_DUMP_AS_CHILD"

// TestMain lets the test binary serve as a child process that dumps the
// path in $NAR_TEST_DUMP_AS_CHILD and prints the error.
func TestMain(m *testing.M) {
	if p := os.Getenv(dumpEnv); p != "" {
		err := nar.Dump(io.Discard, p)
		fmt.Print(err)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// dumpAsNobody runs Dump of root as the user nobody, in a copy of the test
// binary placed in base, and returns the error message it printed.
func dumpAsNobody(t *testing.T, base, root string) string {
	t.Helper()
	self, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(base, "nar.test")
	if err := os.WriteFile(exe, self, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), dumpEnv+"="+root)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child dump as nobody: %v\n%s", err, out)
	}
	if len(out) == 0 || string(out) == "<nil>" {
		t.Fatalf("Dump as nobody succeeded on %s", root)
	}
	return string(out)
}

// failingWriter fails after accepting limit bytes.
type failingWriter struct{ limit int }

var errSink = errors.New("sink failed")

func (f *failingWriter) Write(p []byte) (int, error) {
	if len(p) > f.limit {
		n := f.limit
		f.limit = 0
		return n, errSink
	}
	f.limit -= len(p)
	return len(p), nil
}

// TestDumpWriterError checks that a failing destination stops the dump
// with its error, at any point.
func TestDumpWriterError(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tree")
	writeTree(t, dir)
	for _, limit := range []int{0, 100, 300 << 10, 1 << 20} {
		if err := nar.Dump(&failingWriter{limit: limit}, dir); !errors.Is(err, errSink) {
			t.Errorf("limit %d: error %v, want %v", limit, err, errSink)
		}
	}
}

// TestHashIsSHA256OfDump ties Hash to Dump without any real tool.
func TestHashIsSHA256OfDump(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tree")
	writeTree(t, dir)
	var b bytes.Buffer
	if err := nar.Dump(&b, dir); err != nil {
		t.Fatal(err)
	}
	sum, size, err := nar.Hash(dir)
	if err != nil {
		t.Fatal(err)
	}
	if sum != sha256.Sum256(b.Bytes()) || size != int64(b.Len()) {
		t.Errorf("Hash = %x, %d; sha256 of Dump = %x, %d", sum, size, sha256.Sum256(b.Bytes()), b.Len())
	}
}
