package main

import (
	"bytes"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/storepack/storepack/internal/nixtest"
	"github.com/storepack/storepack/internal/oracle"
)

// nixCache has Nix copy the test closure into a binary cache folder,
// compressed as compression and signed with a new key; it returns the
// folder and the public key.
func nixCache(t *testing.T, c *nixtest.Closure, compression string) (dir, pub string) {
	t.Helper()
	keys := t.TempDir()
	sec := filepath.Join(keys, "cache.sec")
	c.Output(t, "nix-store", "--generate-binary-cache-key", "cache.example.org-1", sec, filepath.Join(keys, "cache.pub"))
	dir = filepath.Join(t.TempDir(), "cache")
	cmd := c.Command("nix", "--extra-experimental-features", "nix-command", "copy", "--to", "file://"+dir+"?compression="+compression+"&secret-key="+sec, c.Root)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("nix copy: %v\n%s", err, b)
	}
	b, err := os.ReadFile(filepath.Join(keys, "cache.pub"))
	if err != nil {
		t.Fatal(err)
	}
	return dir, strings.TrimSpace(string(b))
}

// cacheSpec writes a spec whose store is empty (a chroot folder with
// nothing in it) and whose items come from the caches; its exports are a
// bundle and a docker image of the closure.
func cacheSpec(t *testing.T, c *nixtest.Closure, caches []string, keys []string) string {
	t.Helper()
	dir := t.TempDir()
	empty := t.TempDir()
	q := func(ss []string) string { return `["` + strings.Join(ss, `", "`) + `"]` }
	spec := `store {
  dir                 = "` + c.StoreDir + `"
  root                = "` + empty + `"
  db                  = "none"
  substituters        = ` + q(caches) + `
  trusted_public_keys = ` + q(keys) + `
}

export "bundle" {
  format  = "nar"
  paths   = ["` + c.Root + `"]
  systems = ["x86_64-linux"]
}

export "image" {
  format     = "docker"
  paths      = ["` + c.Items[nixtest.Hello] + `"]
  systems    = ["x86_64-linux"]
  tag        = "localhost/storepack-substituted:1"
  entrypoint = ["` + c.HelloScript + `"]
}
`
	if err := os.WriteFile(filepath.Join(dir, "storepack.hcl"), []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestSubstituters: with nothing in the local store, exports read the
// closure from binary caches Nix wrote (xz, zstd, bzip2, none), from the
// folder and over http: the bundle is nix-store --export's bytes, podman
// runs the image.
func TestSubstituters(t *testing.T) {
	podman := oracle.Require(t, "podman")
	oracle.Require(t, "runc")
	c := nixtest.Build(t, nixtest.NixLayout)
	want := c.Output(t, "nix-store", append([]string{"--export"}, c.Paths(t)...)...)
	for _, compression := range []string{"xz", "zstd", "bzip2", "none"} {
		t.Run(compression, func(t *testing.T) {
			cacheDir, pub := nixCache(t, c, compression)
			srv := serve(t, cacheDir)
			for _, url := range []string{"file://" + cacheDir, srv} {
				// A cache folder of its own: substituted items are kept
				// there by NAR hash, and each run must fetch them.
				xdg := t.TempDir()
				makeRemovable(t, xdg)
				dir := cacheSpec(t, c, []string{url}, []string{pub})
				out := filepath.Join(t.TempDir(), "out")
				if r := storepackEnv(t, []string{"XDG_CACHE_HOME=" + xdg}, "export", "-q", "-C", dir, "--out", out); r.code != 0 {
					t.Fatalf("export from %s: exit %d\n%s", url, r.code, r.stderr)
				}
				entries, err := os.ReadDir(filepath.Join(xdg, "storepack", "substitutes"))
				// Not counted: .lock, which runs hold while they fetch.
				entries = slices.DeleteFunc(entries, func(e os.DirEntry) bool { return strings.HasPrefix(e.Name(), ".") })
				if err != nil || len(entries) != len(c.Paths(t)) {
					t.Errorf("%s: the substitutes folder holds %d entries, want every item of the closure: %v", url, len(entries), err)
				}
				got, err := os.ReadFile(filepath.Join(out, "bundle.nar"))
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, want) {
					t.Errorf("%s: the bundle (%d bytes) differs from nix-store --export's (%d)", url, len(got), len(want))
				}
				if compression == "zstd" {
					if b, err := exec.Command(podman, "load", "-i", filepath.Join(out, "image.tar")).CombinedOutput(); err != nil {
						t.Fatalf("podman load: %v\n%s", err, b)
					}
					b, runErr, err := oracle.PodmanRun(podman, "--network", "none", "localhost/storepack-substituted:1")
					exec.Command(podman, "rmi", "-f", "localhost/storepack-substituted:1").Run()
					if err != nil || string(b) != nixtest.HelloOutput {
						t.Errorf("podman run: %q, %v\n%s", b, err, runErr)
					}
				}
			}
		})
	}
}

// TestSubstitutedFormats: every format from a cache (Nix's, zstd), with
// nothing in the store: a tarball whose items Nix dumps as the store has
// them, an OCI layout, a binary cache re-signed with another key (which
// Nix verifies), and a push.
func TestSubstitutedFormats(t *testing.T) {
	oracle.Require(t, "tar")
	c := nixtest.Build(t, nixtest.NixLayout)
	cacheDir, pub := nixCache(t, c, "zstd")
	host := oracle.StartRegistry(t).Host
	dir := cacheSpec(t, c, []string{"file://" + cacheDir}, []string{pub})
	ok(t, nil, "keygen", "other.example.org-1", filepath.Join(dir, "other.sec"), filepath.Join(dir, "other.pub"))
	more := `
export "tree" {
  format      = "tarball"
  paths       = ["` + c.Root + `"]
  systems     = ["x86_64-linux"]
  compression = "none"
  symlinks    = {}
}

export "layout" {
  format  = "oci"
  paths   = ["` + c.Root + `"]
  systems = ["x86_64-linux"]
  tag     = "substituted:1"
}

export "copy" {
  format   = "binary-cache"
  paths    = ["` + c.Root + `"]
  systems  = ["x86_64-linux"]
  sign_key = "other.sec"
}

export "pushed" {
  format   = "oci"
  paths    = ["` + c.Items[nixtest.Hello] + `"]
  systems  = ["x86_64-linux"]
  tag      = "substituted:1"
  push     = "` + host + `/team/substituted:1"
  insecure = true
}
`
	if err := os.WriteFile(filepath.Join(dir, "more.hcl"), []byte(more), 0o644); err != nil {
		t.Fatal(err)
	}
	xdg := t.TempDir()
	makeRemovable(t, xdg)
	env := []string{"XDG_CACHE_HOME=" + xdg}
	out := filepath.Join(t.TempDir(), "out")
	if r := storepackEnv(t, env, "export", "-q", "-C", dir, "--out", out, "tree", "layout", "copy"); r.code != 0 {
		t.Fatalf("export: exit %d\n%s", r.code, r.stderr)
	}
	// The tarball's items are the store's, NAR for NAR.
	root := t.TempDir()
	makeRemovable(t, root)
	if b, err := exec.Command("tar", "-xf", filepath.Join(out, "tree.tar"), "-C", root).CombinedOutput(); err != nil {
		t.Fatalf("tar -x: %v\n%s", err, b)
	}
	for _, p := range c.Paths(t) {
		want := c.Output(t, "nix-store", "--dump", p)
		got := c.Output(t, "nix-store", "--dump", root+p)
		if !bytes.Equal(got, want) {
			t.Errorf("%s: the extracted item's NAR differs from the store's", p)
		}
	}
	// The layout holds the closure.
	if _, err := os.Stat(filepath.Join(out, "layout", "index.json")); err != nil {
		t.Errorf("no layout: %v", err)
	}
	// Nix verifies the copied cache with the other key.
	otherPub, _ := os.ReadFile(filepath.Join(dir, "other.pub"))
	cmd := c.Command("nix", "--extra-experimental-features", "nix-command", "store", "verify", "--store", "file://"+filepath.Join(out, "copy"),
		"--trusted-public-keys", strings.TrimSpace(string(otherPub)), "-r", c.Root)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("nix store verify of the copied cache: %v\n%s", err, b)
	}
	// A push from the cache.
	if r := storepackEnv(t, env, "push", "-C", dir, "pushed"); r.code != 0 {
		t.Errorf("push: exit %d\n%s", r.code, r.stderr)
	}
	oracleOutput(t, "skopeo", "inspect", "--tls-verify=false", "docker://"+host+"/team/substituted:1")
}

// TestSubstituterErrors: a corrupted NAR, a missing narinfo, an untrusted
// key and an unreachable cache each fail the export with a message naming
// the item or cache, and write no output.
func TestSubstituterErrors(t *testing.T) {
	c := nixtest.Build(t, nixtest.NixLayout)
	cacheDir, pub := nixCache(t, c, "none")
	hello := c.Items[nixtest.Hello]
	hash := filepath.Base(hello)[:32]
	narinfo, err := os.ReadFile(filepath.Join(cacheDir, hash+".narinfo"))
	if err != nil {
		t.Fatal(err)
	}
	var narURL string
	for _, l := range strings.Split(string(narinfo), "\n") {
		if u, ok := strings.CutPrefix(l, "URL: "); ok {
			narURL = u
		}
	}
	copyCache := func() string {
		dst := filepath.Join(t.TempDir(), "cache")
		if b, err := exec.Command("cp", "-a", cacheDir, dst).CombinedOutput(); err != nil {
			t.Fatalf("cp: %v\n%s", err, b)
		}
		return dst
	}
	corrupt := copyCache()
	nf := filepath.Join(corrupt, narURL)
	b, err := os.ReadFile(nf)
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(nf, 0o644)
	b[len(b)/2] ^= 0xff
	if err := os.WriteFile(nf, b, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("corrupted %s (%d bytes)", nf, len(b))
	missing := copyCache()
	os.Remove(filepath.Join(missing, hash+".narinfo"))
	_, otherPub := nixCache(t, c, "none")
	for _, tt := range []struct {
		name, cache, key string
		want             []string
	}{
		{"corrupted NAR", "file://" + corrupt, pub, []string{hello, "file://" + corrupt}},
		{"missing narinfo", "file://" + missing, pub, []string{hello, "nor in any substituter"}},
		{"untrusted key", "file://" + cacheDir, otherPub, []string{"no signature by a trusted key", "file://" + cacheDir}},
		{"unreachable", "http://" + closedAddr(t), pub, []string{"unreachable after 3 attempts"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			xdg := t.TempDir()
			makeRemovable(t, xdg)
			dir := cacheSpec(t, c, []string{tt.cache}, []string{tt.key})
			out := filepath.Join(t.TempDir(), "out")
			r := storepackEnv(t, []string{"XDG_CACHE_HOME=" + xdg}, "export", "-q", "-C", dir, "--out", out)
			if r.code != 1 {
				t.Errorf("exit %d, want 1\n%s", r.code, r.stderr)
			}
			for _, w := range tt.want {
				if !strings.Contains(string(r.stderr), w) {
					t.Errorf("stderr lacks %q:\n%s", w, r.stderr)
				}
			}
			if entries, _ := os.ReadDir(out); len(entries) > 0 {
				t.Errorf("a failed export wrote %v", entries)
			}
		})
	}
}

// serve serves dir over http on loopback until the test ends.
func serve(t *testing.T, dir string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.FileServer(http.Dir(dir))}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return "http://" + l.Addr().String()
}

// closedAddr is a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}
