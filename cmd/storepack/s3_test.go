package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/storepack/storepack/internal/nixtest"
	"github.com/storepack/storepack/internal/oracle"
	"github.com/storepack/storepack/internal/s3test"
)

// TestS3Cache: a binary-cache export to an s3:// bucket (a real S3
// server) writes the objects of the same export to a folder, byte for
// byte, and nothing in the output folder; verify-cache checks the bucket;
// an export with nothing in the store reads the closure from the bucket
// (substituters), and podman runs its image. Wrong credentials and a
// missing bucket fail with exit 1, writing nothing.
func TestS3Cache(t *testing.T) {
	podman := oracle.Require(t, "podman")
	oracle.Require(t, "runc")
	c := nixtest.Build(t, nixtest.NixLayout)
	srv := s3test.Start(t)
	srv.CreateBucket("ci-cache")
	cacheURL := srv.CacheURL("ci-cache", "nix")

	dir := t.TempDir()
	sec, pub := filepath.Join(dir, "cache.sec"), filepath.Join(dir, "cache.pub")
	ok(t, nil, "keygen", "ci-cache-1", sec, pub)
	spec := publishSpec(c, sec, cacheURL)
	if err := os.WriteFile(filepath.Join(dir, "storepack.hcl"), []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}

	// The bucket alone: no output folder is made.
	out := filepath.Join(t.TempDir(), "out")
	ok(t, nil, "export", "-q", "-C", dir, "--out", out, "bucket")
	if _, err := os.Lstat(out); err == nil {
		t.Errorf("an export to a bucket made the output folder %s", out)
	}
	ok(t, nil, "export", "-q", "-C", dir, "--out", out, "folder")
	folder := map[string][]byte{}
	err := filepath.WalkDir(filepath.Join(out, "cache"), func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(filepath.Join(out, "cache"), p)
		b, err := os.ReadFile(p)
		folder["nix/"+filepath.ToSlash(rel)] = b
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	bucket := srv.Objects("ci-cache")
	if len(bucket) != len(folder) || len(folder) < 2*len(c.Paths(t)) {
		t.Errorf("the bucket holds %d objects, the folder %d files, the closure %d items", len(bucket), len(folder), len(c.Paths(t)))
	}
	for k, v := range folder {
		if !bytes.Equal(bucket[k], v) {
			t.Errorf("the object %s is not the folder's file", k)
		}
	}

	got := string(ok(t, nil, "verify-cache", cacheURL, "--key", pub))
	if want := fmt.Sprintf("%d narinfos verified", len(c.Paths(t))); !strings.Contains(got, "s3://ci-cache/nix") || !strings.Contains(got, want) {
		t.Errorf("verify-cache printed %q, want %q of s3://ci-cache/nix", got, want)
	}

	// Substitute from the bucket, with nothing in the store.
	xdg := t.TempDir()
	makeRemovable(t, xdg)
	pubKey, err := os.ReadFile(pub)
	if err != nil {
		t.Fatal(err)
	}
	subDir := cacheSpec(t, c, []string{cacheURL}, []string{strings.TrimSpace(string(pubKey))})
	subOut := filepath.Join(t.TempDir(), "out")
	if r := storepackEnv(t, []string{"XDG_CACHE_HOME=" + xdg}, "export", "-q", "-C", subDir, "--out", subOut, "image"); r.code != 0 {
		t.Fatalf("export from %s: exit %d\n%s", cacheURL, r.code, r.stderr)
	}
	if b, err := exec.Command(podman, "load", "-i", filepath.Join(subOut, "image.tar")).CombinedOutput(); err != nil {
		t.Fatalf("podman load: %v\n%s", err, b)
	}
	b, runErr, err := oracle.PodmanRun(podman, "--network", "none", "localhost/storepack-substituted:1")
	exec.Command(podman, "rmi", "-f", "localhost/storepack-substituted:1").Run()
	if err != nil || string(b) != nixtest.HelloOutput {
		t.Errorf("podman run: %q, %v\n%s", b, err, runErr)
	}

	// Refusals: exit 1, a message naming the bucket, nothing written.
	const wrongSecret = "not-the-secret-5ecd"
	srv.CreateBucket("other")
	for _, tc := range []struct {
		name, output string
		env          []string
		want         string
	}{
		{"wrong secret", srv.CacheURL("other", ""), []string{"AWS_SECRET_ACCESS_KEY=" + wrongSecret}, "refused"},
		{"missing bucket", srv.CacheURL("missing", ""), nil, "does not exist"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := t.TempDir()
			if err := os.WriteFile(filepath.Join(d, "storepack.hcl"), []byte(`store {
  dir = "`+c.StoreDir+`"
  db  = "`+c.DBPath+`"
}
`+cacheExport(c, sec, "bucket", tc.output)), 0o644); err != nil {
				t.Fatal(err)
			}
			r := storepackEnv(t, tc.env, "export", "-q", "-C", d, "--out", filepath.Join(d, "out"))
			if r.code != 1 || !strings.Contains(string(r.stderr), tc.want) || strings.Contains(string(r.stderr), wrongSecret) {
				t.Errorf("exit %d, stderr %s; want exit 1 and %q, without the secret", r.code, r.stderr, tc.want)
			}
			if objs := srv.Objects("other"); len(objs) != 0 {
				t.Errorf("objects written: %d", len(objs))
			}
		})
	}
}

// TestS3LockAndVerify: lock and verify of a binary-cache export to a
// bucket build it as a folder, as they build every export: the lock holds
// the files' s3:// names with the bytes of the same export to a folder,
// and neither command sends the server a single request.
func TestS3LockAndVerify(t *testing.T) {
	c := nixtest.Build(t, nixtest.NixLayout)
	srv := s3test.Start(t)
	srv.CreateBucket("locked")
	dir := t.TempDir()
	sec, pub := filepath.Join(dir, "cache.sec"), filepath.Join(dir, "cache.pub")
	ok(t, nil, "keygen", "locked-1", sec, pub)
	spec := publishSpec(c, sec, srv.CacheURL("locked", "nix"))
	if err := os.WriteFile(filepath.Join(dir, "storepack.hcl"), []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}

	_, from := srv.Requests(0)
	ok(t, nil, "lock", "-C", dir)
	ok(t, nil, "verify", "-C", dir)
	if lines, _ := srv.Requests(from); len(lines) != 0 {
		t.Errorf("lock and verify sent the server %d requests:\n%s", len(lines), strings.Join(lines, "\n"))
	}
	if objs := srv.Objects("locked"); len(objs) != 0 {
		t.Errorf("lock and verify put %d objects in the bucket", len(objs))
	}
	if up := srv.Uploads("locked"); len(up) != 0 {
		t.Errorf("lock and verify left multipart uploads: %q", up)
	}

	data, err := os.ReadFile(filepath.Join(dir, "storepack.lock"))
	if err != nil {
		t.Fatal(err)
	}
	var lock struct {
		Exports []struct {
			Name  string
			Files []struct {
				Path, SHA256 string
				Size         int64
			}
		}
	}
	if err := json.Unmarshal(data, &lock); err != nil {
		t.Fatal(err)
	}
	files := map[string]map[string]string{} // export -> name in the cache -> digest and size
	for _, e := range lock.Exports {
		files[e.Name] = map[string]string{}
		for _, f := range e.Files {
			rel, found := strings.CutPrefix(f.Path, map[string]string{"folder": "cache/", "bucket": "s3://locked/nix/"}[e.Name])
			if !found {
				t.Errorf("export %s: the lock names %s", e.Name, f.Path)
			}
			files[e.Name][rel] = fmt.Sprint(f.SHA256, " ", f.Size)
		}
	}
	folder, bucket := files["folder"], files["bucket"]
	if len(folder) < 2*len(c.Paths(t)) || len(bucket) != len(folder) {
		t.Errorf("the lock lists %d files of the bucket, %d of the folder, for %d items", len(bucket), len(folder), len(c.Paths(t)))
	}
	for rel, want := range folder {
		if bucket[rel] != want {
			t.Errorf("%s: the lock records %q for the bucket, %q for the folder", rel, bucket[rel], want)
		}
	}
}

// publishSpec is a spec with two zstd binary-cache exports of c's
// closure signed with the key sec: "folder" into the folder cache,
// "bucket" to bucketURL.
func publishSpec(c *nixtest.Closure, sec, bucketURL string) string {
	return `store {
  dir = "` + c.StoreDir + `"
  db  = "` + c.DBPath + `"
}
` + cacheExport(c, sec, "folder", "cache") + cacheExport(c, sec, "bucket", bucketURL)
}

// cacheExport is a zstd binary-cache export of c's closure named name,
// signed with the key sec, to output.
func cacheExport(c *nixtest.Closure, sec, name, output string) string {
	return `export "` + name + `" {
  format      = "binary-cache"
  paths       = ["` + c.Root + `"]
  systems     = ["x86_64-linux"]
  compression = "zstd"
  sign_key    = "` + sec + `"
  output      = "` + output + `"
}
`
}
