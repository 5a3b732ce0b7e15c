// Command bench runs storepack and the real tools side by side on the same
// inputs and prints wall-time ratios and peak memory: `go run mage.go bench`.
// It needs Nix (nix-bin), GNU tar, gzip and mksquashfs (squashfs-tools),
// and writes one large item to the Nix store (a copy
// of GOROOT added with nix-store --add) when BENCH_TREE does not name one,
// and five more (GOROOT's src, pkg, bin, api and lib) for the incremental
// rows: cold (empty layer cache) and warm exports of a closure of those
// and a small source item that changes before every run. Outputs, the
// cache and temporary files go below $TMPDIR: its file system decides what
// a warm docker archive costs (a clone of the cached layers on btrfs and
// XFS, a copy elsewhere; see docs/cache.md), so the incremental rows are
// also run on a loop-mounted XFS image when this machine can mount one.
package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"
)

var (
	runs      = flag.Int("runs", 3, "runs of each command; the fastest counts")
	tree      = flag.String("tree", os.Getenv("BENCH_TREE"), "a store item of at least 200 MB (default: GOROOT added to the Nix store)")
	scaleOnly = flag.Bool("scale", false, "run the scale rows alone")
	s3Only    = flag.Bool("s3", false, "run the scale closure's S3 binary cache rows alone")
	relocOnly = flag.Bool("relocatable", false, "run the relocatable wrapper's start-up row alone")
	relOnly   = flag.Bool("releases", false, "run the scale closure's release rows alone (issue 24's layering scenarios)")
	profOnly  = flag.Bool("profile", false, "run the 500-item profile row alone")
	lazyOnly  = flag.Bool("lazy", false, "run the rows of the layers for lazy pulls alone (zstd:chunked and eStargz exports against zstd and gzip)")
)

// result is one timed command.
type result struct {
	wall  time.Duration
	maxKB int64
}

func main() {
	flag.Parse()
	os.Setenv("NIX_REMOTE", "")
	os.Setenv("NIX_CONFIG", "build-users-group =") // root builds, no nixbld group needed
	os.Setenv("STOREPACK_QUIET", "1")              // no progress lines between the rows
	tmp, err := os.MkdirTemp("", "storepack-bench-")
	check(err)
	defer os.RemoveAll(tmp)
	bin := filepath.Join(tmp, "storepack")
	if *relocOnly {
		relocatable(tmp)
		return
	}
	if *profOnly {
		profileRow()
		return
	}
	run("go", "build", "-o", bin, "./cmd/storepack")
	if *scaleOnly || *s3Only || *relOnly {
		scale(bin, tmp)
		return
	}
	goroot := strings.TrimSpace(output("go", "env", "GOROOT"))

	item := *tree
	if item == "" {
		item = strings.TrimSpace(output("nix-store", "--add", goroot))
	}
	fmt.Printf("tree: %s (%s)\n\n", item, strings.Fields(output("du", "-sh", item))[0])
	closure := strings.Fields(output("nix-store", "-qR", item))
	out := filepath.Join(tmp, "out")

	tw := tabwriter.NewWriter(os.Stdout, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "operation\tstorepack\treal tool\tratio\ttarget\tstorepack peak RSS")
	exportOut := filepath.Join(tmp, "export")
	// Every run of either side starts with no previous output (replacing
	// a large file frees its blocks, which costs the same to both) and
	// with nothing left to write back from the run before it.
	fresh := func() {
		check(os.RemoveAll(exportOut))
		check(os.RemoveAll(out))
		syscall.Sync()
	}
	row := func(name, target string, ours, theirs []string) {
		a := bestWith(ours, os.Environ(), out, fresh)
		b := bestWith(theirs, os.Environ(), out, fresh)
		fmt.Fprintf(tw, "%s\t%.3fs\t%.3fs (%s)\t%.2f x\t%s\t%.1f MiB\n", name, a.wall.Seconds(), b.wall.Seconds(), theirs[0],
			a.wall.Seconds()/b.wall.Seconds(), target, float64(a.maxKB)/1024)
	}
	if *lazyOnly {
		lazyRows(row, tmp, item)
		check(tw.Flush())
		return
	}
	row("dump to a file", "<= 1.0", []string{bin, "dump", item}, []string{"nix-store", "--dump", item})
	row("hash", "<= 0.6", []string{bin, "hash", item}, []string{"nix-hash", "--type", "sha256", item})
	row("bundle of the closure", "<= 1.0", []string{bin, "bundle", "--store", "/nix/store", item}, append([]string{"nix-store", "--export"}, closure...))

	spec := filepath.Join(tmp, "spec")
	check(os.MkdirAll(spec, 0o755))
	check(os.WriteFile(filepath.Join(spec, "storepack.hcl"), []byte(`store {
  dir = "/nix/store"
}

export "bench" {
  format  = "docker"
  paths   = ["`+item+`"]
  systems = ["x86_64-linux"]
  output  = "bench.tar"
}
`), 0o644))
	row("docker export of the closure (--no-cache)", "<= 1.2", []string{bin, "export", "--no-cache", "-C", spec, "--out", exportOut}, append([]string{"nix-store", "--export"}, closure...))

	// The supply chain: the same export with both SBOMs, the provenance
	// and a signature, against the plain export (the "real tool" column),
	// with an ECDSA P-256 key (signs the SHA-256 computed while writing)
	// and an ed25519 key (reads the archive twice more: docs/supply-chain.md).
	for _, k := range []struct{ name, file string }{{"ECDSA P-256", ecdsaKey(tmp)}, {"ed25519", ed25519Key(bin, tmp)}} {
		chainSpec := filepath.Join(tmp, "chain-spec")
		check(os.MkdirAll(chainSpec, 0o755))
		check(os.WriteFile(filepath.Join(chainSpec, "storepack.hcl"), []byte(`store {
  dir = "/nix/store"
}

export "bench" {
  format     = "docker"
  paths      = ["`+item+`"]
  systems    = ["x86_64-linux"]
  output     = "bench.tar"
  sbom       = ["spdx", "cyclonedx"]
  provenance = true
  sign_key   = "`+k.file+`"
}
`), 0o644))
		row("docker export with SBOMs, provenance, "+k.name+" signature", "<= 1.05", []string{bin, "export", "--no-cache", "-C", chainSpec, "--out", exportOut},
			[]string{bin, "export", "--no-cache", "-C", spec, "--out", exportOut})
	}

	// gzip layers next to tar | gzip -6 of the same files.
	row("oci gzip export of the closure (--no-cache)", "< 1.0", []string{bin, "export", "--no-cache", "-C", ociSpec(tmp, item, "oci-gzip", "gzip"), "--out", exportOut},
		[]string{"sh", "-c", "tar -c -C / " + strings.TrimPrefix(item, "/") + " | gzip -6"})

	lazyRows(row, tmp, item)

	// The file system tree formats.
	treeSpec := func(f, compression string) {
		check(os.WriteFile(filepath.Join(spec, "storepack.hcl"), []byte(`store {
  dir = "/nix/store"
}

export "bench" {
  format      = "`+f+`"
  compression = "`+compression+`"
  paths       = ["`+item+`"]
  systems     = ["x86_64-linux"]
  symlinks    = {}
}
`), 0o644))
	}
	treeSpec("tarball", "none")
	row("tarball, no compression", "<= 1.0", []string{bin, "export", "-C", spec, "--out", exportOut}, append([]string{"nix-store", "--export"}, closure...))
	// storepack syncs every output before renaming it into place; the
	// same with the real tool's output synced too (GNU sync of stdout).
	row("tarball, no compression (both synced)", "<= 1.0", []string{bin, "export", "-C", spec, "--out", exportOut},
		append([]string{"sh", "-c", `nix-store --export "$@" && sync /dev/stdout`, "sh"}, closure...))
	treeSpec("tarball", "gzip")
	row("tarball, gzip", "<= 0.5", []string{bin, "export", "-C", spec, "--out", exportOut},
		[]string{"sh", "-c", "tar -c -C / " + strings.TrimPrefix(item, "/") + " | gzip -6"})
	treeSpec("squashfs", "gzip")
	squashfsOut := filepath.Join(tmp, "bench.squashfs")
	row("squashfs, gzip", "<= 1.0", []string{bin, "export", "-C", spec, "--out", exportOut},
		[]string{"sh", "-c", "rm -f " + squashfsOut + " && mksquashfs " + item + " " + squashfsOut + " -comp gzip -processors 2 -quiet -no-progress"})
	check(tw.Flush())
	relocatable(tmp)
	profileRow()

	// The closure at scale (BENCH_SCALE=0 leaves it out).
	if os.Getenv("BENCH_SCALE") != "0" {
		scale(bin, tmp)
	}

	// Incremental re-exports: a closure of several large items and one
	// small source item whose contents change before every warm run.
	var paths []string
	for _, sub := range []string{"src", "pkg", "bin", "api", "lib"} {
		paths = append(paths, `"`+strings.TrimSpace(output("nix-store", "--add", filepath.Join(goroot, sub)))+`"`)
	}
	fmt.Printf("\nincremental: %d store items (GOROOT's src, pkg, bin, api, lib: %s) and a source item that changes\n", len(paths),
		strings.Fields(output("sh", "-c", "du -shc "+strings.ReplaceAll(strings.Join(paths, " "), `"`, "")+" | tail -1"))[0])
	incremental(bin, out, paths, tmp)
	// The same on XFS, which clones the cached layers of archives, when
	// this machine can mount one (root, mkfs.xfs, a loop device).
	if mnt, unmount, err := mountXFS(tmp); err != nil {
		fmt.Printf("\n(no XFS rows: %v)\n", err)
	} else {
		defer unmount()
		incremental(bin, out, paths, mnt)
	}
}

// ociSpec writes, in the folder name below tmp, a spec exporting item as
// an OCI layout of one layer compressed as compression, and returns the
// folder.
func ociSpec(tmp, item, name, compression string) string {
	dir := filepath.Join(tmp, name)
	check(os.MkdirAll(dir, 0o755))
	check(os.WriteFile(filepath.Join(dir, "storepack.hcl"), []byte(`store {
  dir = "/nix/store"
}

export "bench" {
  format      = "oci"
  compression = "`+compression+`"
  max_layers  = 1
  paths       = ["`+item+`"]
  systems     = ["x86_64-linux"]
  output      = "bench"
}
`), 0o644))
	return dir
}

// lazyRows prints the rows of the layers for lazy pulls: the whole OCI
// layout export of item, one layer, as zstd:chunked and eStargz next to
// the plain zstd and gzip layers they extend (issue 24: at most 1.3 times
// as long), with their peak RSS.
func lazyRows(row func(name, target string, ours, theirs []string), tmp, item string) {
	bin := filepath.Join(tmp, "storepack")
	exportOut := filepath.Join(tmp, "export")
	for _, c := range [][2]string{{"zstd:chunked", "zstd"}, {"estargz", "gzip"}} {
		row("oci "+c[0]+" export (--no-cache), against "+c[1], "<= 1.3",
			[]string{bin, "export", "--no-cache", "-C", ociSpec(tmp, item, "spec-"+strings.ReplaceAll(c[0], ":", "-"), c[0]), "--out", exportOut},
			[]string{bin, "export", "--no-cache", "-C", ociSpec(tmp, item, "spec-"+c[1], c[1]), "--out", exportOut})
	}
}

// incremental prints the cold and warm times of exports, with their
// outputs, spec and cache below base, of the store items paths and a source
// item that changes before every run.
func incremental(bin, out string, paths []string, base string) {
	fmt.Printf("output and cache on %s (%s)\n\n", fsName(base), base)
	spec := filepath.Join(base, "incremental-spec")
	exportOut := filepath.Join(base, "incremental-export")
	app := filepath.Join(spec, "app")
	check(os.MkdirAll(app, 0o755))
	cacheHome := filepath.Join(base, "cache-home")
	run := 0
	changeApp := func() {
		run++
		check(os.WriteFile(filepath.Join(app, "version"), []byte(fmt.Sprintf("run %d %d\n", run, time.Now().UnixNano())), 0o644))
	}
	tw := tabwriter.NewWriter(os.Stdout, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "export (one item changed)\tcold (empty cache)\twarm (cache)\tratio\ttarget\twarm peak RSS")
	for _, f := range []struct{ kind, format, output string }{
		{"oci layout", "oci", "bench"}, {"oci-archive", "oci", "bench.tar"}, {"docker archive", "docker", "bench.tar"},
	} {
		check(os.WriteFile(filepath.Join(spec, "storepack.hcl"), []byte(`store {
  dir = "/nix/store"
}

source "app" {
  path = "app"
}

export "bench" {
  format  = "`+f.format+`"
  paths   = [`+strings.Join(paths, ", ")+`, source.app.store_path]
  systems = ["x86_64-linux"]
  output  = "`+f.output+`"
}
`), 0o644))
		argv := []string{bin, "export", "-C", spec, "--out", exportOut}
		env := append(os.Environ(), "XDG_CACHE_HOME="+cacheHome)
		cold := bestWith(argv, env, out, func() { changeApp(); check(os.RemoveAll(cacheHome)) })
		warm := bestWith(argv, env, out, changeApp)
		fmt.Fprintf(tw, "%s\t%.3fs\t%.3fs\t%.2f x\t<= 0.15\t%.1f MiB\n", f.kind, cold.wall.Seconds(), warm.wall.Seconds(),
			warm.wall.Seconds()/cold.wall.Seconds(), float64(warm.maxKB)/1024)
	}
	check(tw.Flush())
	check(os.RemoveAll(exportOut))
	check(os.RemoveAll(cacheHome))
}

// mountXFS makes an XFS file system in a sparse image below tmp and mounts
// it (a loop device), or says why it cannot.
func mountXFS(tmp string) (string, func(), error) {
	mkfs, err := exec.LookPath("mkfs.xfs")
	if err != nil {
		return "", nil, fmt.Errorf("mkfs.xfs is not installed (Debian package xfsprogs)")
	}
	img, mnt := filepath.Join(tmp, "xfs.img"), filepath.Join(tmp, "xfs")
	if err := os.MkdirAll(mnt, 0o755); err != nil {
		return "", nil, err
	}
	if err := os.WriteFile(img, nil, 0o644); err != nil {
		return "", nil, err
	}
	if err := os.Truncate(img, 4<<30); err != nil {
		return "", nil, err
	}
	if b, err := exec.Command(mkfs, "-q", "-f", "-m", "reflink=1", img).CombinedOutput(); err != nil {
		return "", nil, fmt.Errorf("mkfs.xfs: %v: %s", err, b)
	}
	if b, err := exec.Command("mount", "-o", "loop", img, mnt).CombinedOutput(); err != nil {
		return "", nil, fmt.Errorf("cannot mount a loop device (root and /dev/loop* needed): %v: %s", err, strings.TrimSpace(string(b)))
	}
	return mnt, func() { exec.Command("umount", mnt).Run() }, nil
}

// bestWith runs argv *runs times with the environment env, after pre, with
// stdout to the file out, and keeps the fastest run.
func bestWith(argv, env []string, out string, pre func()) result {
	var rs []result
	for i := 0; i < *runs; i++ {
		pre()
		f, err := os.Create(out)
		check(err)
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Stdout, cmd.Stderr, cmd.Env = f, os.Stderr, env
		start := time.Now()
		if err := cmd.Run(); err != nil {
			fmt.Fprintf(os.Stderr, "bench: %s: %v\n", strings.Join(argv, " "), err)
			os.Exit(1)
		}
		wall := time.Since(start)
		f.Close()
		rs = append(rs, result{wall, cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss})
	}
	return slices.MinFunc(rs, func(a, b result) int { return int(a.wall - b.wall) })
}

// fsName names the file system holding dir.
func fsName(dir string) string {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return "an unknown file system"
	}
	names := map[int64]string{0xEF53: "ext2/3/4", 0x58465342: "XFS", 0x9123683E: "btrfs", 0x01021994: "tmpfs", 0x794C7630: "overlayfs"}
	if n, ok := names[int64(st.Type)]; ok {
		return n
	}
	return fmt.Sprintf("file system type %#x", st.Type)
}

// ecdsaKey writes an ECDSA P-256 key (PKCS#8 PEM) below tmp.
func ecdsaKey(tmp string) string {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	check(err)
	der, err := x509.MarshalPKCS8PrivateKey(k)
	check(err)
	p := filepath.Join(tmp, "ecdsa.key")
	check(os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600))
	return p
}

// ed25519Key makes an ed25519 key below tmp with storepack keygen --pem.
func ed25519Key(bin, tmp string) string {
	name := filepath.Join(tmp, "ed25519")
	run(bin, "keygen", "--pem", name)
	return name + ".key"
}

func run(argv ...string) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	check(cmd.Run())
}

func output(argv ...string) string {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stderr = os.Stderr
	b, err := cmd.Output()
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: %s: %v\n", strings.Join(argv, " "), err)
		os.Exit(1)
	}
	return string(b)
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}
