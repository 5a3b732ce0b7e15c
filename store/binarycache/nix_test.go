package binarycache

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/storepack/storepack/internal/nixtest"
	"github.com/storepack/storepack/internal/oracle"
	"github.com/storepack/storepack/internal/s3test"
	"github.com/storepack/storepack/internal/signing"
	"github.com/storepack/storepack/store"
)

// nixEnv is the environment for Nix's tools on layout's store, with a
// private cache folder so that no narinfo Nix cached in an earlier run
// (or test) is used.
func nixEnv(t *testing.T, layout nixtest.Layout) []string {
	t.Helper()
	return append(layout.Env(), "XDG_CACHE_HOME="+t.TempDir())
}

// runNix runs a command with env and returns its stdout; err carries its
// stderr.
func runNix(env []string, stdin []byte, name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	if err := cmd.Run(); err != nil {
		return stdout.String(), &cmdError{cmd: name + " " + strings.Join(args, " "), err: err, stderr: stderr.String()}
	}
	return stdout.String(), nil
}

type cmdError struct {
	cmd, stderr string
	err         error
}

func (e *cmdError) Error() string { return e.cmd + ": " + e.err.Error() + "\n" + e.stderr }

// mustNix runs a command like runNix and fails the test when it fails.
func mustNix(t *testing.T, env []string, name string, args ...string) string {
	t.Helper()
	out, err := runNix(env, nil, name, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// requireNix stops the test unless Nix's tools are installed.
func requireNix(t *testing.T) {
	t.Helper()
	for _, tool := range []string{"nix-store", "nix-build", "nix"} {
		oracle.Require(t, tool)
	}
}

// builds holds the attributes of testdata/closure.nix built so far.
var builds sync.Map // attribute -> *built

type built struct {
	once sync.Once
	root string
	err  error
}

// buildLocal builds testdata/closure.nix in the Nix layout and returns the
// store path of its root. It is this package's own closure: tests may
// delete it from the store.
func buildLocal(t *testing.T) string { return buildAttr(t, "root") }

// buildAttr builds the attribute attr of testdata/closure.nix in the Nix
// layout, once, and returns its store path.
func buildAttr(t *testing.T, attr string) string {
	t.Helper()
	requireNix(t)
	v, _ := builds.LoadOrStore(attr, &built{})
	b := v.(*built)
	b.once.Do(func() {
		file, err := filepath.Abs("testdata/closure.nix")
		if err != nil {
			b.err = err
			return
		}
		env := nixtest.NixLayout.Env()
		args := []string{"--option", "sandbox", "false", "--no-out-link", file, "-A", attr}
		out, err := runNix(env, nil, "nix-build", args...)
		b.root, b.err = strings.TrimSpace(out), err
	})
	if b.err != nil {
		t.Fatalf("building %s of testdata/closure.nix: %v", attr, b.err)
	}
	return b.root
}

// storeItems reads the closure of root from the layout's store database,
// as gen does, as Items.
func storeItems(t *testing.T, layout nixtest.Layout, root string) []Item {
	t.Helper()
	st, err := store.Open(store.Options{Dir: store.Dir(layout.StoreDir()), DB: layout.DBPath()})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	paths, err := st.Closure(store.Path(root))
	if err != nil {
		t.Fatal(err)
	}
	var items []Item
	for _, p := range paths {
		info, err := st.Info(p)
		if err != nil {
			t.Fatal(err)
		}
		if len(info.NarHash) != 32 {
			t.Fatalf("%s: the database records no NAR hash", p)
		}
		items = append(items, Item{
			Path: p, NarHash: store.Hash(info.NarHash), NarSize: info.NarSize,
			References: info.References, Deriver: info.Deriver, FSPath: st.FSPath(p),
		})
	}
	return items
}

// nixKey makes a key pair with `nix-store --generate-binary-cache-key`
// and reads it back.
func nixKey(t *testing.T, env []string, name string) (secretFile string, sk signing.SecretKey, pk signing.PublicKey) {
	t.Helper()
	dir := t.TempDir()
	secretFile, publicFile := filepath.Join(dir, "secret"), filepath.Join(dir, "public")
	mustNix(t, env, "nix-store", "--generate-binary-cache-key", name, secretFile, publicFile)
	sk, err := signing.ReadSecretKey(secretFile)
	if err != nil {
		t.Fatal(err)
	}
	pk, err = signing.ReadPublicKey(publicFile)
	if err != nil {
		t.Fatal(err)
	}
	return secretFile, sk, pk
}

// nixCopy writes the closure of root into a new cache folder with `nix
// copy` and signs it with `nix store sign` when secretFile is set.
func nixCopy(t *testing.T, env []string, root, compression, secretFile string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "nix-cache")
	url := "file://" + dir + "?compression=" + compression
	mustNix(t, env, "nix", "--experimental-features", "nix-command", "copy", "--to", url, root)
	if secretFile != "" {
		mustNix(t, env, "nix", "--experimental-features", "nix-command", "store", "sign",
			"--store", "file://"+dir, "--key-file", secretFile, "--recursive", root)
	}
	return dir
}

// sigsBy keeps the signatures by the key named name.
func sigsBy(sigs []string, name string) []string {
	var out []string
	for _, s := range sigs {
		if strings.HasPrefix(s, name+":") {
			out = append(out, s)
		}
	}
	return out
}

// TestNixSignatures checks keys and signatures against Nix's: keys made by
// nix-store --generate-binary-cache-key, signatures made by nix store sign.
func TestNixSignatures(t *testing.T) {
	root := buildLocal(t)
	env := nixEnv(t, nixtest.NixLayout)
	secretFile, sk, pk := nixKey(t, env, "nix-made-1")
	if sk.Public().String() != pk.String() {
		t.Errorf("public key of Nix's secret key: ours %s, Nix's %s", sk.Public(), pk)
	}
	paths := strings.Fields(mustNix(t, env, "nix-store", "-qR", root))
	for _, comp := range []string{CompressionNone, CompressionXZ, CompressionZstd} {
		t.Run(comp, func(t *testing.T) {
			dir := nixCopy(t, env, root, comp, secretFile)
			for _, p := range paths {
				ni := readNarInfo(t, filepath.Join(dir, store.Path(p).HashPart()+".narinfo"))
				// The path may carry signatures from elsewhere (a
				// substitution by another test): take the key's.
				sigs := sigsBy(ni.Sigs, sk.Name)
				if len(sigs) != 1 {
					t.Fatalf("%s: Nix wrote signatures %q, want one by %s", p, ni.Sigs, sk.Name)
				}
				if ours := sk.Sign(ni.Fingerprint()); ours != sigs[0] {
					t.Errorf("%s: our signature %s, Nix's %s (fingerprint %q)", p, ours, sigs[0], ni.Fingerprint())
				}
				if !pk.Verify(ni.Fingerprint(), sigs[0]) {
					t.Errorf("%s: Nix's signature does not verify", p)
				}
			}
			// Verify reads the cache Nix wrote, NARs compressed by Nix.
			n, err := Verify(dir, pk)
			if err != nil || n != len(paths) {
				t.Errorf("Verify of Nix's cache: %d, %v; want %d", n, err, len(paths))
			}
		})
	}
	t.Run("our key", func(t *testing.T) {
		secret, public, err := signing.Keygen("ours-1")
		if err != nil {
			t.Fatal(err)
		}
		out, err := runNix(env, []byte(secret), "nix", "--experimental-features", "nix-command", "key", "convert-secret-to-public")
		if err != nil {
			t.Fatal(err)
		}
		if strings.TrimSpace(out) != public {
			t.Errorf("nix key convert-secret-to-public gives %q, signing.Keygen %q", out, public)
		}
		file := filepath.Join(t.TempDir(), "secret")
		if err := os.WriteFile(file, []byte(secret), 0o600); err != nil {
			t.Fatal(err)
		}
		dir := nixCopy(t, env, root, CompressionNone, file)
		pub, _ := signing.ParsePublicKey(public)
		if n, err := Verify(dir, pub); err != nil || n != len(paths) {
			t.Errorf("Verify of a cache Nix signed with our key: %d, %v", n, err)
		}
	})
}

// TestNixNarInfoMatches writes the test closure with Write and with nix
// copy, both signed with the same key, and compares the narinfos: equal
// bytes without compression, equal fields but the compressed file's
// otherwise.
func TestNixNarInfoMatches(t *testing.T) {
	requireNix(t)
	nixtest.ForEachLayout(t, func(t *testing.T, c *nixtest.Closure) {
		env := nixEnv(t, c.Layout)
		secretFile, sk, pk := nixKey(t, env, "match-1")
		items := storeItems(t, c.Layout, c.Root)
		nixDir := nixCopy(t, env, c.Root, CompressionNone, secretFile)
		if got, err := os.ReadFile(filepath.Join(nixDir, CacheInfoFile)); err != nil || string(got) != "StoreDir: "+c.StoreDir+"\n" {
			t.Errorf("Nix's nix-cache-info: %q, %v", got, err)
		}
		for _, comp := range writeCompressions() {
			t.Run(comp, func(t *testing.T) {
				dir := filepath.Join(t.TempDir(), "cache")
				res, err := Write(dir, items, Options{StoreDir: store.Dir(c.StoreDir), Compression: comp, Key: &sk})
				if err != nil {
					t.Fatal(err)
				}
				if len(res.Entries) != len(items) {
					t.Fatalf("%d entries for %d items", len(res.Entries), len(items))
				}
				for _, e := range res.Entries {
					nixText, err := os.ReadFile(filepath.Join(nixDir, e.File))
					if err != nil {
						t.Fatalf("Nix wrote no %s: %v", e.File, err)
					}
					ourText, err := os.ReadFile(filepath.Join(dir, e.File))
					if err != nil {
						t.Fatal(err)
					}
					nixInfo, err := ParseNarInfo(nixText)
					if err != nil {
						t.Fatal(err)
					}
					if comp == CompressionNone && len(nixInfo.Sigs) == 1 {
						if diff := cmp.Diff(string(nixText), string(ourText)); diff != "" {
							t.Errorf("%s (-nix +ours):\n%s", e.File, diff)
						}
						continue
					}
					// Signatures the path carries from elsewhere are not
					// ours to write.
					nixInfo.Sigs = sigsBy(nixInfo.Sigs, sk.Name)
					ours, err := ParseNarInfo(ourText)
					if err != nil {
						t.Fatal(err)
					}
					if comp != CompressionNone {
						ours.URL, ours.Compression, ours.FileHash, ours.FileSize = nixInfo.URL, nixInfo.Compression, nixInfo.FileHash, nixInfo.FileSize
					}
					if diff := cmp.Diff(nixInfo, ours); diff != "" {
						t.Errorf("%s, apart from the compressed file (-nix +ours):\n%s", e.File, diff)
					}
				}
				if n, err := Verify(dir, pk); err != nil || n != len(items) {
					t.Errorf("Verify: %d, %v", n, err)
				}
			})
		}
	})
}

// TestNixSubstitutes deletes the test closure from the store and has Nix
// substitute it back from caches storepack wrote, once per compression:
// with another trusted key Nix refuses them, with the signing key it
// restores every path with the same NAR hash, references and deriver. A
// second Write into the cache writes no file.
func TestNixSubstitutes(t *testing.T) {
	root := buildLocal(t)
	env := nixEnv(t, nixtest.NixLayout)
	items := storeItems(t, nixtest.NixLayout, root)
	_, sk, pk := nixKey(t, env, "substitute-1")
	other := testKey(t, "substitute-1").Public()

	describe := func(p string) string {
		var b strings.Builder
		for _, q := range []string{"--hash", "--size", "--references", "--deriver"} {
			b.WriteString(mustNix(t, env, "nix-store", "-q", q, p))
		}
		return b.String()
	}
	paths := make([]string, len(items))
	want := map[string]string{}
	for i, it := range items {
		paths[i] = string(it.Path)
		want[paths[i]] = describe(paths[i])
	}
	valid := func() []string {
		var v []string
		for _, p := range paths {
			if _, err := runNix(env, nil, "nix-store", "--check-validity", p); err == nil {
				v = append(v, p)
			}
		}
		return v
	}
	substitute := func(dir string, key signing.PublicKey) error {
		_, err := runNix(env, nil, "nix-store", "-r", root,
			"--option", "substituters", "file://"+dir,
			"--option", "trusted-public-keys", key.String(),
			"--option", "require-sigs", "true",
			"--option", "narinfo-cache-negative-ttl", "0")
		return err
	}

	for _, comp := range writeCompressions() {
		t.Run(comp, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "cache")
			res, err := Write(dir, items, Options{StoreDir: "/nix/store", Compression: comp, Key: &sk})
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("first export: %d files written, %d items skipped", len(res.Written), res.Skipped)
			if n, err := Verify(dir, pk); err != nil || n != len(items) {
				t.Fatalf("Verify: %d, %v", n, err)
			}

			mustNix(t, env, "nix-store", append([]string{"--delete"}, paths...)...)
			if v := valid(); len(v) != 0 {
				t.Fatalf("still valid after nix-store --delete: %q", v)
			}
			for _, p := range paths {
				if _, err := os.Lstat(p); err == nil {
					t.Fatalf("%s is still on disk", p)
				}
			}

			err = substitute(dir, other)
			if err == nil {
				t.Errorf("Nix substituted from a cache signed by another key")
			} else if !strings.Contains(err.Error(), "is not signed by any of the keys in 'trusted-public-keys'") {
				t.Errorf("Nix failed for another reason than the signature: %v", err)
			}
			if v := valid(); len(v) != 0 {
				t.Errorf("valid after a refused substitution: %q", v)
			}

			if err := substitute(dir, pk); err != nil {
				t.Fatalf("Nix does not substitute from our cache: %v", err)
			}
			for _, p := range paths {
				if got := describe(p); got != want[p] {
					t.Errorf("%s substituted as\n%s\nwant\n%s", p, got, want[p])
				}
			}
			mustNix(t, env, "nix-store", "--verify-path", root)

			res, err = Write(dir, items, Options{StoreDir: "/nix/store", Compression: comp, Key: &sk})
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("second export: %d files written, %d items skipped", len(res.Written), res.Skipped)
			if len(res.Written) != 0 || res.Skipped != len(items) {
				t.Errorf("second export wrote %q and skipped %d items; want no file, %d skipped", res.Written, res.Skipped, len(items))
			}
		})
	}
}

// TestNixSubstitutesFromS3: Nix (which has no S3 support on this Debian)
// substitutes a closure published to a bucket through the bucket's plain
// http URL, checking its signatures.
func TestNixSubstitutesFromS3(t *testing.T) {
	root := buildLocal(t)
	env := nixEnv(t, nixtest.NixLayout)
	items := storeItems(t, nixtest.NixLayout, root)
	_, sk, pk := nixKey(t, env, "s3-substitute-1")
	srv := s3test.Start(t)
	srv.CreateBucket("nixcache")
	c, err := NewS3(srv.CacheURL("nixcache", "ci"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := WriteCache(context.Background(), c, items, Options{StoreDir: "/nix/store", Compression: CompressionZstd, Key: &sk}); err != nil {
		t.Fatal(err)
	}
	nixSubstitutes(t, env, root, items, srv.URL+"/nixcache/ci", pk)
}

// nixSubstitutes deletes items, the closure of root, from the Nix
// layout's store, has Nix substitute root from the cache at url with
// only pk trusted and signatures required, and checks every item is back
// with its NAR hash.
func nixSubstitutes(t *testing.T, env []string, root string, items []Item, url string, pk signing.PublicKey) {
	t.Helper()
	paths := make([]string, len(items))
	want := map[string]string{}
	for i, it := range items {
		paths[i] = string(it.Path)
		want[paths[i]] = mustNix(t, env, "nix-store", "-q", "--hash", paths[i])
	}
	mustNix(t, env, "nix-store", append([]string{"--delete"}, paths...)...)
	for _, p := range paths {
		if _, err := os.Lstat(p); err == nil {
			t.Fatalf("%s is still on disk", p)
		}
	}
	if _, err := runNix(env, nil, "nix-store", "-r", root,
		"--option", "substituters", url,
		"--option", "trusted-public-keys", pk.String(),
		"--option", "require-sigs", "true",
		"--option", "narinfo-cache-negative-ttl", "0"); err != nil {
		t.Fatalf("Nix does not substitute from %s: %v", url, err)
	}
	for _, p := range paths {
		if got := mustNix(t, env, "nix-store", "-q", "--hash", p); got != want[p] {
			t.Errorf("%s substituted with NAR hash %s, want %s", p, got, want[p])
		}
	}
	mustNix(t, env, "nix-store", "--verify-path", root)
}

// TestNixSubstitutesAfterS3Fault: the server killed while a publish
// uploads a multipart NAR (12 MiB of random bytes), restarted, and the
// same publish run again: no multipart upload is left, the bucket passes
// VerifyCache, and Nix substitutes the closure from it through its plain
// http URL, checking its signatures.
func TestNixSubstitutesAfterS3Fault(t *testing.T) {
	saved := S3MaxBackoff
	S3MaxBackoff = 50 * time.Millisecond // the retries run out quickly
	t.Cleanup(func() { S3MaxBackoff = saved })
	root := buildAttr(t, "big")
	env := nixEnv(t, nixtest.NixLayout)
	items := storeItems(t, nixtest.NixLayout, root)
	_, sk, pk := nixKey(t, env, "s3-fault-1")
	srv := s3test.Start(t)
	srv.CreateBucket("faultcache")
	c := newS3(t, cacheURLAt(srv, "faultcache", killAtSecondPart(t, srv)), 0)
	opts := Options{StoreDir: "/nix/store", Compression: CompressionZstd, Key: &sk}
	ctx := context.Background()
	if _, err := WriteCache(ctx, c, items, opts); err == nil || !strings.Contains(err.Error(), root) {
		t.Fatalf("publish with the server killed: %v; want an error naming %s", err, root)
	}
	srv.Restart()
	if up := srv.Uploads("faultcache"); len(up) == 0 {
		t.Fatal("the killed run left no multipart upload: it was not killed mid-upload")
	}
	if _, err := WriteCache(ctx, c, items, opts); err != nil {
		t.Fatalf("the publish does not complete once the server is back: %v", err)
	}
	if up := srv.Uploads("faultcache"); len(up) != 0 {
		t.Errorf("multipart uploads left: %q", up)
	}
	if n, err := VerifyCache(ctx, c, pk); err != nil || n != len(items) {
		t.Errorf("VerifyCache: %d narinfos, %v; want %d", n, err, len(items))
	}
	nixSubstitutes(t, env, root, items, srv.URL+"/faultcache", pk)
}
