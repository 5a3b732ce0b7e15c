package export

import (
	"bufio"
	"context"
	"crypto/sha256"
	"go/build"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/storepack/storepack/format"
	"github.com/storepack/storepack/gen"
	"github.com/storepack/storepack/internal/fixture"
	"github.com/storepack/storepack/internal/layercache"
	"github.com/storepack/storepack/plan"
	"github.com/storepack/storepack/spec"
	"github.com/storepack/storepack/store"
)

// BenchmarkWriteDocker writes a docker archive of one large store item
// (BENCH_TREE, default GOROOT, read in place) to a file in a temporary
// folder through a 1 MiB buffer and sha256, as export.Write does.
func BenchmarkWriteDocker(b *testing.B) {
	tree := os.Getenv("BENCH_TREE")
	if tree == "" {
		tree = build.Default.GOROOT
	}
	if _, err := os.Stat(tree); err != nil {
		b.Skipf("no tree to write (%v): set BENCH_TREE to a large folder", err)
	}
	p := fixture.StorePath("/nix/store", "bench-tree")
	sys := &plan.System{Name: "x86_64-linux", Roots: []store.Path{p}, ClosureDigest: "sha256:00000000000000000000",
		Closure: []plan.Item{{Path: p, FSPath: tree, References: []store.Path{}}}}
	e := &spec.Export{Name: "bench", Format: format.Format("docker"), Symlinks: map[string]string{}, Image: spec.Image{}}
	img, err := gen.PlanImage(context.Background(), e, sys)
	if err != nil {
		b.Fatal(err)
	}
	sys.Image = img
	ge := &plan.Export{Name: "bench", Format: "docker", Systems: []plan.System{*sys}}
	out := filepath.Join(b.TempDir(), "out.tar")
	b.ResetTimer()
	for b.Loop() {
		// A new file each time, as export.Write makes: rewriting a
		// truncated file makes ext4 flush it on close.
		os.Remove(out)
		f, err := os.Create(out)
		if err != nil {
			b.Fatal(err)
		}
		h := sha256.New()
		bw := bufio.NewWriterSize(io.MultiWriter(f, h), 1<<20)
		if _, err := writeDocker(bw, ge, nil, nil); err != nil {
			b.Fatal(err)
		}
		bw.Flush()
		st, _ := f.Stat()
		b.SetBytes(st.Size())
		f.Close()
	}
}

// BenchmarkDockerReexport re-exports, with a warm layer cache, a docker
// archive of a large store item (BENCH_TREE, default GOROOT) and a small
// source item that changes before every export, as an incremental release
// build does: the archive resumes after the large item's layer. Set
// TMPDIR to a btrfs or XFS folder to measure the clone of that layer
// instead of its copy.
func BenchmarkDockerReexport(b *testing.B) {
	tree := os.Getenv("BENCH_TREE")
	if tree == "" {
		tree = build.Default.GOROOT
	}
	if _, err := os.Stat(tree); err != nil {
		b.Skipf("no tree to write (%v): set BENCH_TREE to a large folder", err)
	}
	big := fixture.StorePath("/nix/store", "bench-tree")
	appDir := b.TempDir()
	planOf := func(run int) *plan.Export {
		if err := os.WriteFile(filepath.Join(appDir, "version"), []byte(strconv.Itoa(run)), 0o644); err != nil {
			b.Fatal(err)
		}
		sum := sha256.Sum256([]byte(strconv.Itoa(run)))
		app := store.Dir("/nix/store").Join(store.Encode32(sum[:20]) + "-app")
		sys := &plan.System{Name: "x86_64-linux", Roots: []store.Path{big, app}, ClosureDigest: "sha256:00000000000000000000",
			Closure: []plan.Item{
				{Path: big, FSPath: tree, NarHash: sha256.Sum256([]byte("bench-tree")), References: []store.Path{}},
				{Path: app, FSPath: appDir, NarHash: sha256.Sum256([]byte("app-" + strconv.Itoa(run))), References: []store.Path{}, Source: "app"},
			}}
		e := &spec.Export{Name: "bench", Format: format.Format("docker"), Output: "bench.tar", Symlinks: map[string]string{}, Image: spec.Image{}}
		img, err := gen.PlanImage(context.Background(), e, sys)
		if err != nil {
			b.Fatal(err)
		}
		sys.Image = img
		return &plan.Export{Name: "bench", Format: "docker", Output: "bench.tar", Systems: []plan.System{*sys}}
	}
	cache, err := layercache.Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	out := b.TempDir()
	if _, err := writeExport(&plan.Plan{}, planOf(0), out, Options{Cache: cache}); err != nil {
		b.Fatal(err)
	}
	run := 1
	for b.Loop() {
		files, err := writeExport(&plan.Plan{}, planOf(run), out, Options{Cache: cache})
		if err != nil {
			b.Fatal(err)
		}
		run++
		b.SetBytes(files[0].Size)
	}
}
