package atomicfile

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// names lists the entries of dir.
func names(t *testing.T, dir string) []string {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, de := range des {
		out = append(out, de.Name())
	}
	return out
}

func TestCommit(t *testing.T) {
	defer syscall.Umask(syscall.Umask(0o077))
	dir := t.TempDir()
	final := filepath.Join(dir, "out.tar")
	if err := os.WriteFile(final, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := Create(final, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if base := filepath.Base(f.Name()); !strings.HasPrefix(base, ".out.tar.tmp-") {
		t.Errorf("temporary name %s, want .out.tar.tmp-*", base)
	}
	f.WriteString("new")
	if b, _ := os.ReadFile(final); string(b) != "old" {
		t.Errorf("the final name holds %q before the commit", b)
	}
	if err := f.Commit(); err != nil {
		t.Fatal(err)
	}
	f.Abort() // after a commit: nothing
	fi, err := os.Stat(final)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(final); string(b) != "new" || fi.Mode().Perm() != 0o644 {
		t.Errorf("after the commit: %q, mode %v; want new, 0644 whatever the umask", b, fi.Mode().Perm())
	}
	if got := names(t, dir); len(got) != 1 {
		t.Errorf("the folder holds %v, want only out.tar", got)
	}
	if err := f.Commit(); err == nil {
		t.Error("a second commit succeeded")
	}
}

func TestAbort(t *testing.T) {
	dir := t.TempDir()
	final := filepath.Join(dir, "out")
	f, err := Create(final, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("partial")
	f.Abort()
	if got := names(t, dir); len(got) != 0 {
		t.Errorf("an aborted file left %v", got)
	}
}

func TestCommitAs(t *testing.T) {
	dir := t.TempDir()
	f, err := CreateIn(dir, ".blob-*", "", 0o444, NoSync)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("blob")
	if err := f.CommitAs(filepath.Join(dir, "digest")); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, "digest"))
	if err != nil || fi.Mode().Perm() != 0o444 {
		t.Fatalf("blob: %v, %v", fi, err)
	}
	g, err := CreateIn(dir, ".blob-*", "", 0o444)
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Commit(); err == nil {
		t.Error("Commit without a final name succeeded")
	}
	if got := names(t, dir); len(got) != 1 {
		t.Errorf("the folder holds %v, want only the blob", got)
	}
}

func TestCommitNew(t *testing.T) {
	dir := t.TempDir()
	final := filepath.Join(dir, "key")
	for i, want := range []bool{true, false} {
		f, err := Create(final, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteString([]string{"first", "second"}[i])
		created, err := f.CommitNew()
		if err != nil || created != want {
			t.Fatalf("CommitNew #%d: %v, %v; want %v", i+1, created, err, want)
		}
	}
	if b, _ := os.ReadFile(final); string(b) != "first" {
		t.Errorf("the file holds %q, want the first one's", b)
	}
	if got := names(t, dir); len(got) != 1 {
		t.Errorf("the folder holds %v, want only key", got)
	}
}

func TestWriteFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "lock")
	if err := WriteFile(p, []byte("data\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p); string(b) != "data\n" {
		t.Errorf("read %q", b)
	}
	if err := WriteFile(filepath.Join(dir, "missing", "x"), nil, 0o644); err == nil {
		t.Error("writing into a missing folder succeeded")
	}
}
