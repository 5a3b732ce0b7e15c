// Command bench runs storepack and the real tools side by side on the same
// inputs and prints wall-time ratios and peak memory: `go run mage.go bench`.
// It needs Nix (nix-bin) and writes one large item to the Nix store (a copy
// of GOROOT added with nix-store --add) when BENCH_TREE does not name one.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"
)

var (
	runs = flag.Int("runs", 3, "runs of each command; the fastest counts")
	tree = flag.String("tree", os.Getenv("BENCH_TREE"), "a store item of at least 200 MB (default: GOROOT added to the Nix store)")
)

// result is one timed command.
type result struct {
	wall  time.Duration
	maxKB int64
}

func main() {
	flag.Parse()
	os.Setenv("NIX_REMOTE", "")
	tmp, err := os.MkdirTemp("", "storepack-bench-")
	check(err)
	defer os.RemoveAll(tmp)
	bin := filepath.Join(tmp, "storepack")
	run("go", "build", "-o", bin, "./cmd/storepack")

	item := *tree
	if item == "" {
		item = strings.TrimSpace(output("nix-store", "--add", runtime.GOROOT()))
	}
	fmt.Printf("tree: %s (%s)\n\n", item, strings.Fields(output("du", "-sh", item))[0])
	closure := strings.Fields(output("nix-store", "-qR", item))
	out := filepath.Join(tmp, "out")

	tw := tabwriter.NewWriter(os.Stdout, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "operation\tstorepack\treal tool\tratio\ttarget\tstorepack peak RSS")
	row := func(name, target string, ours, theirs []string) {
		a, b := best(ours, out), best(theirs, out)
		fmt.Fprintf(tw, "%s\t%.3fs\t%.3fs (%s)\t%.2f x\t%s\t%.1f MiB\n", name, a.wall.Seconds(), b.wall.Seconds(), theirs[0],
			a.wall.Seconds()/b.wall.Seconds(), target, float64(a.maxKB)/1024)
	}
	row("dump to a file", "<= 1.0", []string{bin, "dump", item}, []string{"nix-store", "--dump", item})
	row("hash", "<= 0.8", []string{bin, "hash", item}, []string{"nix-hash", "--type", "sha256", item})
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
	exportOut := filepath.Join(tmp, "export")
	row("docker export of the closure", "<= 1.2", []string{bin, "export", "-C", spec, "--out", exportOut}, append([]string{"nix-store", "--export"}, closure...))
	check(tw.Flush())
}

// best runs argv *runs times with stdout to the file out and keeps the
// fastest run.
func best(argv []string, out string) result {
	var rs []result
	for i := 0; i < *runs; i++ {
		f, err := os.Create(out)
		check(err)
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Stdout, cmd.Stderr = f, os.Stderr
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
