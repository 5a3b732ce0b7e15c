package export

import (
	"archive/tar"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/storepack/storepack/export/image"
	"github.com/storepack/storepack/export/tree"
	"github.com/storepack/storepack/format"
	"github.com/storepack/storepack/internal/fixture"
	"github.com/storepack/storepack/internal/layercache"
	"github.com/storepack/storepack/internal/oracle"
	"github.com/storepack/storepack/plan"
	"github.com/storepack/storepack/spec"
)

// countingReader counts the bytes read through it: after tar.Reader.Next,
// the offset of the entry's data.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// entryOffsets lists the entries of the tar b with the offsets of their
// data.
func entryOffsets(t *testing.T, b []byte) (names []string, offsets map[string]int64) {
	t.Helper()
	cr := &countingReader{r: bytes.NewReader(b)}
	tr := tar.NewReader(cr)
	offsets = map[string]int64{}
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return names, offsets
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, hdr.Name)
		offsets[hdr.Name] = cr.n
	}
}

// TestLayerHead writes a layer's headers at every offset a tar entry can
// start at modulo image.CloneAlign: the layer's bytes start on a multiple of
// image.CloneAlign, and tar readers see the folder and the file only.
func TestLayerHead(t *testing.T) {
	const id = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	data := []byte("layer bytes")
	for off := int64(0); off < 3*image.CloneAlign; off += 512 {
		head, err := image.AlignedHead(dockerLayerHeaders(id, int64(len(data)), 1), off)
		if err != nil {
			t.Fatal(err)
		}
		if (off+int64(len(head)))%image.CloneAlign != 0 {
			t.Errorf("offset %d: the layer starts at %d", off, off+int64(len(head)))
		}
		if len(head) > 1024+image.CloneAlign+512 {
			t.Errorf("offset %d: %d bytes of headers", off, len(head))
		}
		var b bytes.Buffer
		b.Write(head)
		b.Write(data)
		b.Write(make([]byte, tree.Padding(int64(len(data)))))
		b.Write(make([]byte, 1024))
		entries := fixture.ReadTar(t, b.Bytes())
		if len(entries) != 2 || entries[0].Hdr.Name != id+"/" || entries[1].Hdr.Name != id+"/layer.tar" || !bytes.Equal(entries[1].Data, data) {
			t.Fatalf("offset %d: read back %d entries", off, len(entries))
		}
		if c, ok := entries[0].Hdr.PAXRecords["comment"]; ok != (len(head) > 1024) || (ok && !strings.HasPrefix(c, "storepack: padding")) {
			t.Errorf("offset %d: comment record %q with %d bytes of headers", off, c, len(head))
		}
	}
}

// TestDockerLayersAligned checks every docker case: each layer's bytes
// start on a multiple of image.CloneAlign in the archive, in image order.
func TestDockerLayersAligned(t *testing.T) {
	for _, c := range dockerCases {
		t.Run(c.name, func(t *testing.T) {
			e := c.build(t, "")
			b, _ := writeDockerBytes(t, e)
			names, offsets := entryOffsets(t, b)
			var order []string
			for _, name := range names {
				if id, ok := strings.CutSuffix(name, "/layer.tar"); ok {
					order = append(order, id)
					if offsets[name]%image.CloneAlign != 0 {
						t.Errorf("%s starts at %d", name, offsets[name])
					}
				}
			}
			var want []string
			for _, l := range image.Layers(e) {
				want = append(want, l.Plan.ID)
			}
			if strings.Join(order, " ") != strings.Join(want, " ") || want[0] != e.Systems[0].Image.Layers[0].ID {
				t.Errorf("layers in the archive: %v, want the image order %v", order, want)
			}
		})
	}
}

// TestOCIArchiveLayersAligned checks oci-archives as the docker test
// does: after oci-layout and the folders, the layer blobs in image order,
// each starting on a multiple of image.CloneAlign.
func TestOCIArchiveLayersAligned(t *testing.T) {
	for _, c := range ociCases {
		t.Run(c.name(), func(t *testing.T) {
			e := buildImages(t, c.dockerCase, format.Format("oci"), c.compression, "")
			e.Output = "hello.tar"
			files := outputBytes(t, e, Options{})
			names, offsets := entryOffsets(t, files["hello.tar"])
			want := []string{"oci-layout", "blobs/", "blobs/sha256/"}
			seen := map[string]bool{}
			imgs, err := image.Digest(e, nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, img := range imgs.Images {
				for _, b := range img.Blobs {
					if n := "blobs/sha256/" + b.Digest.Encoded(); !seen[n] {
						seen[n] = true
						want = append(want, n)
						if offsets[n]%image.CloneAlign != 0 {
							t.Errorf("%s starts at %d", n, offsets[n])
						}
					}
				}
			}
			if len(names) < len(want) || strings.Join(names[:len(want)], " ") != strings.Join(want, " ") {
				t.Errorf("entries %v, want them to start with %v", names, want)
			}
		})
	}
}

// resumable counts the layers a docker export of e would append from the
// cache without hashing them, and checks that the state it resumes from
// is the one of the archive's bytes so far.
func resumable(t *testing.T, e *plan.Export, c *layercache.Cache) int {
	t.Helper()
	f, err := os.Create(filepath.Join(t.TempDir(), "archive"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	layers := image.Layers(e)
	hits := make([]image.Cached, len(layers))
	for i, l := range layers {
		hits[i], _, _ = image.Lookup(c, l, format.None, true)
	}
	af := newOutFile(f)
	n, _, err := resumeDocker(af, c, layers, hits, e.Systems[0].Image.MTime(), map[string]image.Blob{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := af.close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	if sum := sha256.Sum256(b); hex.EncodeToString(sum[:]) != hex.EncodeToString(af.sum()) {
		t.Errorf("after resuming %d layers, the hash is not the one of the %d bytes written", n, len(b))
	}
	return n
}

// TestDockerResume: a warm docker export resumes after every cached layer
// whose archive state is kept, stops before a layer that must be rebuilt,
// falls back to hashing when a state is damaged, and writes the uncached
// bytes in every case.
func TestDockerResume(t *testing.T) {
	for _, c := range dockerCases {
		t.Run(c.name, func(t *testing.T) {
			root := filepath.Join(t.TempDir(), "store")
			e := c.build(t, root)
			want := outputBytes(t, e, Options{})
			cache, err := layercache.Open(filepath.Join(t.TempDir(), "cache"))
			if err != nil {
				t.Fatal(err)
			}
			layers := image.Layers(e)
			// check exports with the cache, compares the output with the
			// uncached one, and checks that every layer is then resumable.
			check := func(stage string) {
				t.Helper()
				if got := outputBytes(t, e, Options{Cache: cache}); !sameFiles(want, got) {
					t.Errorf("%s: the output differs from the uncached one", stage)
				}
				if n := resumable(t, e, cache); n != len(layers) {
					t.Errorf("after the %s export: %d layers resumable, want %d", stage, n, len(layers))
				}
			}
			if n := resumable(t, e, cache); n != 0 {
				t.Errorf("empty cache: %d layers resumable", n)
			}
			check("cold")
			check("warm")
			// A layer to rebuild (as when one of its items changed):
			// the archive resumes after the layers below it.
			for k := len(layers) - 1; k >= 0; k-- {
				hit, _, ok := image.Lookup(cache, layers[k], format.None, true)
				if !ok {
					t.Fatalf("layer %d not cached", k)
				}
				if err := os.Remove(hit.Path); err != nil {
					t.Fatal(err)
				}
				if n := resumable(t, e, cache); n != k {
					t.Errorf("layer %d to rebuild: %d layers resumable", k, n)
				}
				check("rebuilt layer")
			}
			// Damaged states: the appended bytes are hashed after all.
			states, _ := filepath.Glob(filepath.Join(cache.Dir(), "states", "v1", "*", "*"))
			if len(states) < len(layers) {
				t.Fatalf("%d hash states kept for %d layers", len(states), len(layers))
			}
			for _, p := range states {
				if err := os.WriteFile(p, []byte("sha\x03 not a state"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if n := resumable(t, e, cache); n != 0 {
				t.Errorf("damaged states: %d layers resumable", n)
			}
			check("damaged states")
		})
	}
}

// TestArchiveResumeUsesStates shows that warm exports of docker archives
// and oci-archives take the hash of their unchanged first blobs from the
// cache: with every kept state forged (a valid sha256 state of the right
// length, other words), the reported digest of the warm output is wrong,
// while the bytes are right; with the states repaired, it is right again.
func TestArchiveResumeUsesStates(t *testing.T) {
	cases := []struct {
		name        string
		format      format.Format
		compression format.Compression
		c           dockerCase
	}{
		{"docker", format.Format("docker"), "", dockerCases[0]},
		{"docker-multi-system", format.Format("docker"), "", dockerCases[3]},
		{"oci-archive", format.Format("oci"), "", dockerCases[0]},
		{"oci-archive-zstd-multi-system", format.Format("oci"), "zstd", dockerCases[3]},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := buildImages(t, tc.c, tc.format, tc.compression, "")
			e.Output = "hello.tar"
			want := outputBytes(t, e, Options{})
			cache, err := layercache.Open(filepath.Join(t.TempDir(), "cache"))
			if err != nil {
				t.Fatal(err)
			}
			outputBytes(t, e, Options{Cache: cache})
			states, _ := filepath.Glob(filepath.Join(cache.Dir(), "states", "v1", "*", "*"))
			if len(states) == 0 {
				t.Fatal("no hash state kept")
			}
			saved := map[string][]byte{}
			for _, p := range states {
				st, err := os.ReadFile(p)
				if err != nil {
					t.Fatal(err)
				}
				saved[p] = st
				forged := bytes.Clone(st)
				forged[4] ^= 1 // the first word of the hash
				if err := os.WriteFile(p, forged, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			out := t.TempDir()
			files, err := writeExport(&plan.Plan{}, e, out, Options{Cache: cache})
			if err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(filepath.Join(out, "hello.tar"))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want["hello.tar"]) {
				t.Error("forged states changed the archive's bytes")
			}
			if sum := sha256.Sum256(got); files[0].SHA256 == hex.EncodeToString(sum[:]) {
				t.Error("the warm export hashed every byte: it did not resume from the cached states")
			}
			for p, st := range saved {
				if err := os.WriteFile(p, st, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			outputBytes(t, e, Options{Cache: cache}) // checks the reported digest
		})
	}
}

// TestCloneFS exports a docker archive and an oci-archive into an XFS and
// a btrfs file system (loop-mounted images) with the cache on it too: a
// warm export clones the cached layers into the new archive
// (copy_file_range of 4096-aligned ranges: their extents are then shared,
// as FIEMAP reports), and the bytes are the uncached ones.
func TestCloneFS(t *testing.T) {
	for _, fs := range []struct{ name, mkfs, pkg string }{
		{"xfs", "mkfs.xfs", "xfsprogs"},
		{"btrfs", "mkfs.btrfs", "btrfs-progs"},
	} {
		t.Run(fs.name, func(t *testing.T) {
			mnt := mountImage(t, oracle.Require(t, fs.mkfs))
			checkClones(t, mnt)
		})
	}
}

// mountImage makes a file system with mkfs in a 512 MiB sparse image and
// mounts it (a loop device) until the test ends.
func mountImage(t *testing.T, mkfs string) string {
	if os.Geteuid() != 0 {
		t.Skip("mounting a loop device needs root (a privilege, not a tool)")
	}
	img := filepath.Join(t.TempDir(), "fs.img")
	if err := os.WriteFile(img, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, 512<<20); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(mkfs, "-q", "-f", img).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v: %s", mkfs, err, out)
	}
	mnt := t.TempDir()
	if out, err := exec.Command("mount", "-o", "loop", img, mnt).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a loop device (a privilege, not a tool: needs root with CAP_SYS_ADMIN and /dev/loop*): %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", mnt, err, out)
		}
	})
	return mnt
}

// checkClones exports into mnt, cold then warm, and checks that the warm
// archives share their big layer's blocks with the cache.
func checkClones(t *testing.T, mnt string) {
	const big = 8 << 20
	random := make([]byte, big)
	rand.Read(random)
	items := append(fixture.Hello(), fixture.Item{Name: "big", Files: map[string]string{"data": string(random)}})
	f := fixture.Write(t, "/nix/store", filepath.Join(mnt, "store"), items)
	for _, ff := range []format.Format{format.Format("docker"), format.Format("oci")} {
		t.Run(string(ff), func(t *testing.T) {
			se := &spec.Export{Name: "big", Format: ff, Output: "big.tar", Image: spec.Image{}}
			e := &plan.Export{Name: "big", Format: ff, Output: "big.tar",
				Systems: []plan.System{*f.System(t, "x86_64-linux", se, "hello-2.12", "big")}}
			want := outputBytes(t, e, Options{})
			cache, err := layercache.Open(filepath.Join(mnt, string(ff), "cache"))
			if err != nil {
				t.Fatal(err)
			}
			out := filepath.Join(mnt, string(ff), "out")
			for _, stage := range []string{"cold", "warm"} {
				if _, err := writeExport(&plan.Plan{}, e, out, Options{Cache: cache}); err != nil {
					t.Fatal(err)
				}
				shared := sharedBytes(t, filepath.Join(out, "big.tar"))
				if stage == "cold" && shared != 0 {
					t.Errorf("the cold export shares %d bytes with other files", shared)
				}
				if stage == "warm" && shared < big {
					t.Errorf("the warm export shares %d bytes with the cache, less than the %d of its big layer: it was copied, not cloned", shared, big)
				}
			}
			got, err := os.ReadFile(filepath.Join(out, "big.tar"))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want["big.tar"]) {
				t.Error("the archive with cloned layers differs from the uncached one")
			}
		})
	}
}

// sharedBytes is the length of the extents of the file at p that share
// their blocks with other files (FS_IOC_FIEMAP, FIEMAP_EXTENT_SHARED).
func sharedBytes(t *testing.T, p string) int64 {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil { // FIEMAP_FLAG_SYNC's work, before mapping
		t.Fatal(err)
	}
	// struct fiemap (32 bytes) and room for extents of 56 bytes each.
	const (
		fsIocFiemap        = 0xC020660B
		fiemapFlagSync     = 1
		fiemapExtentShared = 0x2000
		fiemapExtentLast   = 1
		maxExtents         = 512
	)
	var shared int64
	start := uint64(0)
	for {
		buf := make([]byte, 32+56*maxExtents)
		binary.LittleEndian.PutUint64(buf[0:], start)
		binary.LittleEndian.PutUint64(buf[8:], ^uint64(0)-start)
		binary.LittleEndian.PutUint32(buf[16:], fiemapFlagSync)
		binary.LittleEndian.PutUint32(buf[24:], maxExtents)
		if _, _, errno := unix.Syscall(unix.SYS_IOCTL, f.Fd(), fsIocFiemap, uintptr(unsafe.Pointer(&buf[0]))); errno != 0 {
			t.Fatalf("FIEMAP %s: %v", p, errno)
		}
		n := binary.LittleEndian.Uint32(buf[20:])
		if n == 0 {
			return shared
		}
		for i := range n {
			ext := buf[32+56*i:]
			logical, length := binary.LittleEndian.Uint64(ext[0:]), binary.LittleEndian.Uint64(ext[16:])
			flags := binary.LittleEndian.Uint32(ext[40:])
			if flags&fiemapExtentShared != 0 {
				shared += int64(length)
			}
			start = logical + length
			if flags&fiemapExtentLast != 0 {
				return shared
			}
		}
	}
}

// TestOutFileUnhashed: bytes appended without hashing must be followed
// by the state of the same bytes, else writing, asking for the state and
// closing fail; with the state, the hash is the file's.
func TestOutFileUnhashed(t *testing.T) {
	dir := t.TempDir()
	blob := filepath.Join(dir, "blob")
	if err := os.WriteFile(blob, []byte("blob bytes"), 0o444); err != nil {
		t.Fatal(err)
	}
	head := []byte("head ")
	// The state of an archive holding the same bytes.
	ref := newOutFile(mustCreate(t, filepath.Join(dir, "ref")))
	ref.Write(head)
	ref.Write([]byte("blob bytes"))
	ref.Write(make([]byte, 3))
	state, err := ref.HashState()
	if err != nil {
		t.Fatal(err)
	}
	shorter := newOutFile(mustCreate(t, filepath.Join(dir, "short")))
	shorter.Write(head)
	shortState, _ := shorter.HashState()

	open := func(t *testing.T) *outFile {
		af := newOutFile(mustCreate(t, filepath.Join(t.TempDir(), "out")))
		if err := af.AppendUnhashed(head, blob, 10, 3); err != nil {
			t.Fatal(err)
		}
		return af
	}
	t.Run("write before restoring", func(t *testing.T) {
		af := open(t)
		if _, err := af.Write([]byte("x")); err == nil {
			t.Error("a write after unhashed bytes succeeded")
		}
		if _, err := af.HashState(); err == nil {
			t.Error("a state after unhashed bytes was given")
		}
		if err := af.close(); err == nil {
			t.Error("closing with unhashed bytes succeeded")
		}
	})
	t.Run("state of another length", func(t *testing.T) {
		af := open(t)
		if err := af.RestoreHash(shortState); err == nil || !strings.Contains(err.Error(), "after 5 bytes, not 18") {
			t.Errorf("restoring a state of 5 bytes after 18: %v", err)
		}
	})
	t.Run("garbage state", func(t *testing.T) {
		af := open(t)
		if err := af.RestoreHash([]byte("not a state")); err == nil {
			t.Error("restoring garbage succeeded")
		}
	})
	t.Run("restored", func(t *testing.T) {
		af := open(t)
		if err := af.RestoreHash(state); err != nil {
			t.Fatal(err)
		}
		af.Write([]byte("tail"))
		if err := af.close(); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(af.f.Name())
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(b)
		if string(b) != "head blob bytes\x00\x00\x00tail" || !bytes.Equal(sum[:], af.sum()) || af.n != int64(len(b)) {
			t.Errorf("file %q, %d bytes counted, hash %x, want %x", b, af.n, af.sum(), sum)
		}
	})
}

// mustCreate creates the file p.
func mustCreate(t *testing.T, p string) *os.File {
	t.Helper()
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	return f
}
