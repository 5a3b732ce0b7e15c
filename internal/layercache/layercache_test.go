package layercache

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	digest "github.com/opencontainers/go-digest"
)

func open(t *testing.T) *Cache {
	t.Helper()
	c, err := Open(filepath.Join(t.TempDir(), "cache"))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestKeyOf(t *testing.T) {
	a, err := KeyOf("item /gnu/store/x", "mtime 1")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := KeyOf("item /gnu/store/x", "mtime 1")
	c, _ := KeyOf("item /gnu/store/x", "mtime 2")
	d, _ := KeyOf("item /gnu/store/x\nmtime 1")
	if a != b || a == c || len(a) != 64 {
		t.Errorf("KeyOf: same parts %s/%s, other parts %s", a, b, c)
	}
	if d != "" {
		t.Errorf("KeyOf accepted a part with a newline: %s", d)
	}
	if _, err := KeyOf("a\nb"); err == nil || !strings.Contains(err.Error(), "newline") {
		t.Errorf("KeyOf(newline) error = %v", err)
	}
}

func TestRecords(t *testing.T) {
	c := open(t)
	k, _ := KeyOf("layer")
	other, _ := KeyOf("another layer")
	r := Record{Key: k, DiffID: digest.FromString("tar"), Size: 3, Digest: digest.FromString("gz"), BlobSize: 2,
		Annotations: map[string]string{"io.containers.zstd-chunked.manifest-position": "1:2:3:1"}}
	if _, ok := c.Get(k); ok {
		t.Fatal("a record in an empty cache")
	}
	if err := c.Put(r); err != nil {
		t.Fatal(err)
	}
	if got, ok := c.Get(k); !ok || !reflect.DeepEqual(got, r) {
		t.Errorf("Get = %+v, %v; want %+v", got, ok, r)
	}
	if err := c.Put(Record{Key: k}); err == nil {
		t.Error("Put of an incomplete record succeeded")
	}

	// A record stored under another key's name, or damaged, is missing.
	if err := os.MkdirAll(filepath.Dir(c.recordPath(other)), 0o755); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(c.recordPath(k))
	if err := os.WriteFile(c.recordPath(other), b, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, ok := c.Get(other); ok {
		t.Error("a record naming another key was returned")
	}
	if err := os.WriteFile(c.recordPath(k), b[:len(b)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	if _, ok := c.Get(k); ok {
		t.Error("a truncated record was returned")
	}
}

func TestBlobs(t *testing.T) {
	c := open(t)
	data := "layer bytes"
	d := digest.FromString(data)
	if _, ok := c.Blob(d, int64(len(data))); ok {
		t.Fatal("a blob in an empty cache")
	}
	w, err := c.NewBlob()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte(data)); err != nil {
		t.Fatal(err)
	}
	p, err := w.Commit(d)
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := c.Blob(d, int64(len(data))); !ok || got != p {
		t.Fatalf("Blob = %q, %v; want %q", got, ok, p)
	}
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o444 {
		t.Errorf("blob mode %v, want read-only 0444", fi.Mode().Perm())
	}

	dst := filepath.Join(t.TempDir(), "blob")
	if err := Link(p, dst); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(dst); string(b) != data {
		t.Errorf("linked blob holds %q", b)
	}
	if err := Link(p, dst); err == nil {
		t.Error("Link over an existing file succeeded")
	}

	// A blob whose size is not the recorded one is corrupt: removed.
	if _, ok := c.Blob(d, int64(len(data))+1); ok {
		t.Error("a blob of the wrong size was returned")
	}
	if _, err := os.Stat(p); !os.IsNotExist(err) {
		t.Errorf("the corrupt blob is still there (stat: %v)", err)
	}

	// An aborted blob leaves nothing behind.
	w, err = c.NewBlob()
	if err != nil {
		t.Fatal(err)
	}
	w.Abort()
	if ents, _ := os.ReadDir(c.blobDir()); len(ents) != 0 {
		t.Errorf("left in the blob folder: %v", ents)
	}
}

func TestStates(t *testing.T) {
	c := open(t)
	k, _ := KeyOf("archive prefix")
	if _, ok := c.State(k); ok {
		t.Error("a state in an empty cache")
	}
	state := []byte("sha\x03 a marshaled hash state")
	if err := c.PutState(k, state); err != nil {
		t.Fatal(err)
	}
	if got, ok := c.State(k); !ok || string(got) != string(state) {
		t.Errorf("State = %q, %v; want %q", got, ok, state)
	}
	other, _ := KeyOf("another prefix")
	if _, ok := c.State(other); ok {
		t.Error("a state under a key never stored")
	}
	for _, bad := range []struct {
		name  string
		k     Key
		state []byte
	}{
		{"short key", "abc", state},
		{"empty state", k, nil},
		{"oversized state", k, make([]byte, maxState+1)},
	} {
		if err := c.PutState(bad.k, bad.state); err == nil {
			t.Errorf("%s: PutState succeeded", bad.name)
		}
	}
	// An oversized file (not written by PutState) reads as missing.
	if err := os.WriteFile(c.statePath(k), make([]byte, maxState+1), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, ok := c.State(k); ok {
		t.Error("an oversized state was returned")
	}
}
