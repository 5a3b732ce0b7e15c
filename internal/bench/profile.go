package main

import (
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
)

// benchLine is a line of `go test -bench` output: the benchmark's name
// (without its -GOMAXPROCS suffix) and its ns/op.
var benchLine = regexp.MustCompile(`(?m)^(Benchmark\S+?)(?:-\d+)?\s+\d+\s+(\d+(?:\.\d+)?) ns/op`)

// profileRow prints the time a profile of 500 items takes to plan (issue
// 23: under 0.2 s): store/profile's BenchmarkBuild500, the fastest of
// *runs runs of 10 builds each, into a new cache folder (a first run,
// which writes the profile's 1,500 links) and into a cache holding the
// profile (every later run). Its temporary folders, the cache's among
// them, are below $TMPDIR, whose file system decides what writing the
// links costs.
func profileRow() {
	cmd := exec.Command("go", "test", "-run", "^$", "-bench", "^BenchmarkBuild500$", "-benchtime", "10x",
		"-count", strconv.Itoa(*runs), "./store/profile")
	cmd.Stderr = os.Stderr
	b, err := cmd.Output()
	if err != nil {
		fmt.Printf("\n(no profile row: go test -bench BenchmarkBuild500: %v)\n%s", err, b)
		return
	}
	best := map[string]float64{}
	for _, m := range benchLine.FindAllStringSubmatch(string(b), -1) {
		ns, err := strconv.ParseFloat(m[2], 64)
		check(err)
		if old, ok := best[m[1]]; !ok || ns < old {
			best[m[1]] = ns
		}
	}
	first, ok1 := best["BenchmarkBuild500/new-cache"]
	again, ok2 := best["BenchmarkBuild500/cached"]
	if !ok1 || !ok2 {
		fmt.Printf("\n(no profile row: no BenchmarkBuild500/new-cache and /cached figures in:\n%s)\n", b)
		return
	}
	fmt.Printf("\nprofile of 500 items (1,500 links), BenchmarkBuild500, fastest of %d runs of 10, cache on %s (%s):\n", *runs, fsName(os.TempDir()), os.TempDir())
	fmt.Printf("  first plan (written into a new cache) %.3f s; planned again (the cache holds it) %.3f s (target < 0.2 s)\n", first/1e9, again/1e9)
}
