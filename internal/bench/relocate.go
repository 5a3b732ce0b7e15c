package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"time"

	"github.com/storepack/storepack/export/relocate"
	"github.com/storepack/storepack/store"
)

// relocatable prints the start-up cost of the relocatable wrapper
// (issue 23: at most 5 ms): 100 runs of a program that exits at once
// (busybox's true, found by argv[0]) run directly and through its
// wrapper, in turns, from a pack unpacked below tmp whose store folder
// is absent from this machine.
func relocatable(tmp string) {
	const runs = 100
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		fmt.Printf("\n(no relocatable wrapper row: %v; install busybox-static)\n", err)
		return
	}
	dir := store.Dir("/storepack-bench-reloc/store")
	item := string(dir.Join("0123456789abcdfghijklmnpqrsvwxyz-busybox"))
	profile := string(dir.Join("11111111111111111111111111111111-profile"))
	root := filepath.Join(tmp, "reloc")
	w, err := relocate.Wrapper(runtime.GOARCH)
	check(err)
	wrapped, err := relocate.Wrap(w, dir, item+"/bin/true")
	check(err)
	for name, data := range map[string][]byte{item + "/bin/true": bb, profile + "/bin/true": wrapped} {
		check(os.MkdirAll(filepath.Dir(root+name), 0o755))
		check(os.WriteFile(root+name, data, 0o555))
	}
	direct, viaWrapper := root+item+"/bin/true", root+profile+"/bin/true"
	var d, r []time.Duration
	for i := 0; i < runs; i++ {
		for _, c := range []struct {
			path string
			into *[]time.Duration
		}{{direct, &d}, {viaWrapper, &r}} {
			start := time.Now()
			if b, err := exec.Command(c.path).CombinedOutput(); err != nil {
				fmt.Printf("\n(no relocatable wrapper row: %s: %v: %s)\n", c.path, err, b)
				return
			}
			*c.into = append(*c.into, time.Since(start))
		}
	}
	mean := func(ts []time.Duration) time.Duration {
		var sum time.Duration
		for _, t := range ts {
			sum += t
		}
		return sum / time.Duration(len(ts))
	}
	slices.Sort(d)
	slices.Sort(r)
	fmt.Printf("\nrelocatable wrapper start-up, %d runs of busybox true each (mean, median):\n", runs)
	fmt.Printf("  direct %.2f ms, %.2f ms; wrapped %.2f ms, %.2f ms; the wrapper adds %.2f ms (median) (target <= 5 ms)\n",
		ms(mean(d)), ms(d[runs/2]), ms(mean(r)), ms(r[runs/2]), ms(r[runs/2]-d[runs/2]))
}

func ms(t time.Duration) float64 { return float64(t.Microseconds()) / 1000 }
