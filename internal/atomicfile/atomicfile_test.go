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

// TestTempNames checks the temporary names: each starts with its prefix,
// TempName's are fresh and in final's folder, and os.CreateTemp follows
// the patterns.
func TestTempNames(t *testing.T) {
	dir := t.TempDir()
	final := filepath.Join(dir, "out.deb")
	if got, want := TempPrefix(final), ".out.deb.tmp-"; got != want {
		t.Errorf("TempPrefix = %q, want %q", got, want)
	}
	if got, want := TempPattern(final), ".out.deb.tmp-*"; got != want {
		t.Errorf("TempPattern = %q, want %q", got, want)
	}
	if got, want := UnnamedPattern(""), ".tmp-*"; got != want {
		t.Errorf("UnnamedPattern(\"\") = %q, want %q", got, want)
	}
	if got, want := UnnamedPattern("abc"), ".tmp-abc-*"; got != want {
		t.Errorf("UnnamedPattern(\"abc\") = %q, want %q", got, want)
	}
	a, b := TempName(final), TempName(final)
	if a == b || filepath.Dir(a) != dir || !strings.HasPrefix(filepath.Base(a), TempPrefix(final)) || len(filepath.Base(a)) != len(TempPrefix(final))+16 {
		t.Errorf("TempName gave %s and %s, want two names .out.deb.tmp-<16 hex digits> in %s", a, b, dir)
	}
	if _, err := os.Lstat(a); err == nil {
		t.Errorf("TempName made %s", a)
	}
	for _, p := range []struct{ pattern, prefix string }{{TempPattern(final), TempPrefix(final)}, {UnnamedPattern("x"), UnnamedPrefix + "x-"}} {
		f, err := os.CreateTemp(dir, p.pattern)
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
		if base := filepath.Base(f.Name()); !strings.HasPrefix(base, p.prefix) || len(base) == len(p.prefix) {
			t.Errorf("os.CreateTemp(%q) made %s, want %s and a random part", p.pattern, base, p.prefix)
		}
	}
}

func TestRemoveTemps(t *testing.T) {
	dir := t.TempDir()
	for _, p := range []string{"out.tar", ".out.tar.tmp-123", ".tmp-abc", "sub/.x.tmp-1/f", "sub/keep", ".hidden", "sub/deeper/.tmp-9"} {
		os.MkdirAll(filepath.Join(dir, filepath.Dir(p)), 0o755)
		os.WriteFile(filepath.Join(dir, p), nil, 0o644)
	}
	os.Chmod(filepath.Join(dir, "sub/.x.tmp-1"), 0o555)
	if err := RemoveTemps(dir, false); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]bool{"out.tar": true, ".out.tar.tmp-123": false, ".tmp-abc": false, ".hidden": true, "sub/.x.tmp-1": true} {
		if _, err := os.Lstat(filepath.Join(dir, p)); (err == nil) != want {
			t.Errorf("shallow: %s exists %v, want %v", p, err == nil, want)
		}
	}
	if err := RemoveTemps(dir, true); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]bool{"sub/.x.tmp-1": false, "sub/keep": true, "sub/deeper/.tmp-9": false, "sub/deeper": true} {
		if _, err := os.Lstat(filepath.Join(dir, p)); (err == nil) != want {
			t.Errorf("deep: %s exists %v, want %v", p, err == nil, want)
		}
	}
}
