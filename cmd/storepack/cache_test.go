package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestBinaryCacheVerbs: keygen, a binary-cache export signed with the key,
// verify-cache with that key (and its refusal with another), and a second
// export that adds nothing.
func TestBinaryCacheVerbs(t *testing.T) {
	dir := specDir(t)
	keys := t.TempDir()
	sec, pub := filepath.Join(keys, "secret"), filepath.Join(keys, "public")
	ok(t, nil, "keygen", "cache.example.org-1", sec, pub)
	other := strings.Fields(string(ok(t, nil, "keygen", "other-1")))
	if len(other) != 2 || !strings.HasPrefix(other[1], "other-1:") {
		t.Fatalf("keygen NAME printed %q, want a secret and a public key", other)
	}
	cache := `export "cache" {
  format      = "binary-cache"
  paths       = [source.app.store_path]
  systems     = ["x86_64-linux"]
  compression = "zstd"
  sign_key    = "` + sec + `"
}
`
	if err := os.WriteFile(filepath.Join(dir, "cache.hcl"), []byte(cache), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "out")
	ok(t, nil, "export", "-q", "-C", dir, "--out", out, "cache")
	narinfos, _ := filepath.Glob(filepath.Join(out, "cache", "*.narinfo"))
	if len(narinfos) != 5 {
		t.Errorf("%d narinfos, want 5 (the source and its 4-item closure)", len(narinfos))
	}
	if got := string(ok(t, nil, "verify-cache", filepath.Join(out, "cache"), "--key", pub)); !strings.Contains(got, "5 narinfos verified") {
		t.Errorf("verify-cache printed %q", got)
	}
	r := storepack(t, nil, "verify-cache", filepath.Join(out, "cache"), "--key", other[1])
	if r.code != 1 || !strings.Contains(string(r.stderr), ".narinfo") {
		t.Errorf("verify-cache with another key: exit %d, stderr %s", r.code, r.stderr)
	}

	before := modTimes(t, out)
	ok(t, nil, "export", "-q", "-C", dir, "--out", out, "cache")
	after := modTimes(t, out)
	if len(after) != len(before) {
		t.Errorf("second export: %d files, first had %d", len(after), len(before))
	}
	for name, tm := range before {
		if !after[name].Equal(tm) {
			t.Errorf("second export rewrote %s", name)
		}
	}
}

// modTimes maps each file below dir to its modification time.
func modTimes(t *testing.T, dir string) map[string]time.Time {
	t.Helper()
	m := map[string]time.Time{}
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			m[p] = fi.ModTime()
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}
