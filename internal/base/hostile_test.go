package base

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/storepack/storepack/internal/bounded"
	"github.com/storepack/storepack/internal/platform"
	"github.com/storepack/storepack/plan"
)

// copyLayout copies the test layout (an index tagged base:1 of two
// platforms) into a temporary folder.
func copyLayout(t *testing.T) string {
	t.Helper()
	src := "../../gen/testdata/base-layout"
	dir := t.TempDir()
	err := filepath.Walk(src, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if fi.IsDir() {
			return os.MkdirAll(filepath.Join(dir, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dir, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// LayoutBlobs finds the layout's blobs whose bytes contain marker.
func layoutBlobs(t *testing.T, dir, marker string) []string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(dir, "blobs", "sha256"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		b, _ := os.ReadFile(filepath.Join(dir, "blobs", "sha256", e.Name()))
		if bytes.Contains(b, []byte(marker)) {
			out = append(out, e.Name())
		}
	}
	return out
}

// retarget replaces the blob old of dir by content, and every document
// naming it (up to index.json) by one naming the new blob: a layout
// whose digests all hold, describing what content says.
func retarget(t *testing.T, dir, old string, content []byte) {
	t.Helper()
	oldBytes, err := os.ReadFile(filepath.Join(dir, "blobs", "sha256", old))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(content)
	nw := hex.EncodeToString(sum[:])
	if err := os.WriteFile(filepath.Join(dir, "blobs", "sha256", nw), content, 0o644); err != nil {
		t.Fatal(err)
	}
	from := []byte(fmt.Sprintf(`%s","size":%d`, old, len(oldBytes)))
	to := []byte(fmt.Sprintf(`%s","size":%d`, nw, len(content)))
	for _, ref := range layoutBlobs(t, dir, string(from)) {
		b, _ := os.ReadFile(filepath.Join(dir, "blobs", "sha256", ref))
		retarget(t, dir, ref, bytes.ReplaceAll(b, from, to))
	}
	idx := filepath.Join(dir, "index.json")
	b, _ := os.ReadFile(idx)
	os.WriteFile(idx, bytes.ReplaceAll(b, from, to), 0o644)
}

// The markers of the amd64 config and of manifests.
const (
	amd64Config = `"created":"2024-01-01T00:00:00Z","architecture":"amd64"`
	manifests   = `"config":{"mediaType"`
)

var amd64 = platform.Platform{OS: "linux", Architecture: "amd64"}

// TestResolveHostileLayout: a layout whose index, manifest or config is
// not what its digest names, too large, or not a regular file is
// refused with an error naming the base and what is wrong.
func TestResolveHostileLayout(t *testing.T) {
	for _, tt := range []struct {
		name  string
		spoil func(t *testing.T, dir string)
		want  string
	}{
		{"config swapped in place", func(t *testing.T, dir string) {
			cfg := layoutBlobs(t, dir, amd64Config)[0]
			p := filepath.Join(dir, "blobs", "sha256", cfg)
			b, _ := os.ReadFile(p)
			os.WriteFile(p, bytes.Replace(b, []byte(`"Env":[`), []byte(`"Env":["LD_PRELOAD=/x",`), 1), 0o644)
		}, "the blob is 599 bytes of sha256:"},
		{"manifest rewritten in place", func(t *testing.T, dir string) {
			m := layoutBlobs(t, dir, manifests)
			for _, f := range m {
				p := filepath.Join(dir, "blobs", "sha256", f)
				b, _ := os.ReadFile(p)
				os.WriteFile(p, bytes.ReplaceAll(b, []byte(`"size":`), []byte(`"size": `)), 0o644)
			}
		}, "not the 660 bytes of sha256:"},
		{"index.json linked to /dev/zero", func(t *testing.T, dir string) {
			os.Remove(filepath.Join(dir, "index.json"))
			os.Symlink("/dev/zero", filepath.Join(dir, "index.json"))
		}, "not a regular file (a character device)"},
		{"config a FIFO", func(t *testing.T, dir string) {
			p := filepath.Join(dir, "blobs", "sha256", layoutBlobs(t, dir, amd64Config)[0])
			os.Remove(p)
			if err := syscall.Mkfifo(p, 0o644); err != nil {
				t.Fatal(err)
			}
		}, "not a regular file (a FIFO)"},
		{"index.json too large", func(t *testing.T, dir string) {
			p := filepath.Join(dir, "index.json")
			b, _ := os.ReadFile(p)
			os.WriteFile(p, append(b, bytes.Repeat([]byte(" "), bounded.Index)...), 0o644)
		}, "too large"},
		{"config declared 300 MiB", func(t *testing.T, dir string) {
			m := layoutBlobs(t, dir, manifests)
			for _, f := range m {
				b, _ := os.ReadFile(filepath.Join(dir, "blobs", "sha256", f))
				i := bytes.Index(b, []byte(`"size":583`))
				if i < 0 {
					t.Fatalf("no config size in %s", b)
				}
				retarget(t, dir, f, bytes.Replace(b, []byte(`"size":583`), []byte(`"size":314572800`), 1))
			}
		}, "more than 16777216: too large"},
		{"platform name with escapes", func(t *testing.T, dir string) {
			idx := layoutBlobs(t, dir, `"platform"`)[0]
			b, _ := os.ReadFile(filepath.Join(dir, "blobs", "sha256", idx))
			retarget(t, dir, idx, bytes.Replace(b, []byte(`"arm64"`), []byte(`"\u001b[2J"`), 1))
			os.WriteFile(filepath.Join(dir, "want-riscv"), nil, 0o644)
		}, `it has linux/amd64, linux/\x1b[2J`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := copyLayout(t)
			tt.spoil(t, dir)
			p := amd64
			if _, err := os.Stat(filepath.Join(dir, "want-riscv")); err == nil {
				p = platform.Platform{OS: "linux", Architecture: "riscv64"}
			}
			ref := "oci:" + dir + ":base:1"
			_, err := Resolve(ref, p, Options{})
			if err == nil {
				t.Fatal("resolved")
			}
			if msg := err.Error(); !strings.Contains(msg, tt.want) || !strings.HasPrefix(msg, "base "+ref+": ") {
				t.Errorf("error %q, want one starting with the base and holding %q", msg, tt.want)
			}
		})
	}
}

// TestResolveRetargetedLayout: a layout rewritten consistently (every
// digest holds) is taken: the checks are on digests, not on content.
func TestResolveRetargetedLayout(t *testing.T) {
	dir := copyLayout(t)
	cfg := layoutBlobs(t, dir, amd64Config)[0]
	b, _ := os.ReadFile(filepath.Join(dir, "blobs", "sha256", cfg))
	retarget(t, dir, cfg, bytes.Replace(b, []byte("TZDIR="), []byte("TZDIX="), 1))
	got, err := Resolve("oci:"+dir+":base:1", amd64, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(got.Config.Env[0], "TZDIX=") {
		t.Errorf("env %q, want the rewritten config's", got.Config.Env)
	}
}

// TestCheckDiffID: a layer blob whose tar is not its diff id, or that
// expands past LayerLimit, is refused.
func TestCheckDiffID(t *testing.T) {
	dir := copyLayout(t)
	b, err := Resolve("oci:"+dir+":base:1", amd64, Options{})
	if err != nil {
		t.Fatal(err)
	}
	l := b.Layers[0]
	blob, err := os.ReadFile(filepath.Join(dir, "blobs", "sha256", l.Digest.Encoded()))
	if err != nil {
		t.Fatal(err)
	}
	other := l
	other.DiffID = digest.Digest("sha256:" + strings.Repeat("0", 64))
	for _, tt := range []struct {
		name string
		l    plan.BaseLayer
		want string
	}{
		{"its diff id", l, ""},
		{"another diff id", other, "but the base's config gives it the diff id sha256:000"},
	} {
		err := CheckDiffID(bytes.NewReader(blob), tt.l, "layer X")
		if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "layer X")) {
			t.Errorf("%s: %v, want %q", tt.name, err, tt.want)
		}
	}
	if n := LayerLimit(1 << 20); n != 1<<30+1<<30 {
		t.Errorf("LayerLimit(1 MiB) = %d", n)
	}
	// A stream expanding past the limit: zeros, gzip'd.
	bomb := gzipZeros(t, 64<<20)
	big := plan.BaseLayer{Digest: digest.Digest("sha256:" + strings.Repeat("1", 64)), Size: 1, MediaType: "application/vnd.oci.image.layer.v1.tar+gzip", DiffID: other.DiffID}
	saved := limitSlack
	limitSlack = 1 << 20
	defer func() { limitSlack = saved }()
	if err := CheckDiffID(bytes.NewReader(bomb), big, "layer bomb"); !errors.Is(err, bounded.ErrTooLarge) {
		t.Errorf("a gzip bomb: %v, want too large", err)
	}
}

// gzipZeros is n zeros, gzip'd.
func gzipZeros(t *testing.T, n int) []byte {
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	w.Write(make([]byte, n))
	w.Close()
	return b.Bytes()
}

// TestResolveHostileArchive: a docker archive that is not a regular
// file, or whose manifest.json or config is too large, is refused before
// it is read whole.
func TestResolveHostileArchive(t *testing.T) {
	tarOf := func(t *testing.T, files map[string][]byte) string {
		p := filepath.Join(t.TempDir(), "base.tar")
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		tw := tar.NewWriter(f)
		for name, b := range files {
			tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(b)), Typeflag: tar.TypeReg})
			tw.Write(b)
		}
		tw.Close()
		f.Close()
		return p
	}
	for _, tt := range []struct {
		name string
		file func(t *testing.T) string
		want string
	}{
		{"linked to /dev/zero", func(t *testing.T) string {
			p := filepath.Join(t.TempDir(), "base.tar")
			os.Symlink("/dev/zero", p)
			return p
		}, "not a regular file (a character device)"},
		{"a FIFO", func(t *testing.T) string {
			p := filepath.Join(t.TempDir(), "base.tar")
			syscall.Mkfifo(p, 0o644)
			return p
		}, "not a regular file (a FIFO)"},
		{"manifest.json too large", func(t *testing.T) string {
			return tarOf(t, map[string][]byte{"manifest.json": append([]byte("[ "), bytes.Repeat([]byte(" "), bounded.Index)...)})
		}, "manifest.json: more than 4194304 bytes: too large"},
		{"config too large", func(t *testing.T) string {
			return tarOf(t, map[string][]byte{
				"manifest.json": []byte(`[{"Config":"c.json","RepoTags":["x:1"],"Layers":[]}]`),
				"c.json":        bytes.Repeat([]byte(" "), bounded.Config+1),
			})
		}, "config c.json: 16777217 bytes, more than 16777216: too large"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ref := "docker-archive:" + tt.file(t)
			_, err := Resolve(ref, amd64, Options{})
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "base "+ref) {
				t.Errorf("Resolve: %v, want %q", err, tt.want)
			}
		})
	}
}
