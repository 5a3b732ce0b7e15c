package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/storepack/storepack/internal/nixtest"
)

// scale prints the figures of a closure at scale (scale.nix: 500 items,
// 100,000 files, 2 GB, built by Nix once and kept in the store): the time
// to plan it, each format's export and peak memory, the docker export and
// hash against Nix's tools, and a push of its 100-layer image against
// skopeo copy of the same layout to the same registry.
func scale(bin, tmp string) {
	items, files, size := 500, 200, 20000
	if os.Getenv("BENCH_SCALE_SMALL") != "" { // a quick run of the same rows
		items, files, size = 50, 20, 2000
	}
	s, err := nixtest.BuildScale(items, files, size, "storepack-scale")
	check(err)
	closure := strings.Fields(output("nix-store", "-qR", s.Root))
	fmt.Printf("\nscale: %d store items, %d files, %s (%s)\n\n", len(closure), items*files,
		strings.Fields(output("sh", "-c", "du -shc "+strings.Join(closure, " ")+" | tail -1"))[0], s.Root)

	spec := filepath.Join(tmp, "scale-spec")
	out := filepath.Join(tmp, "scale-out")
	outFile := filepath.Join(tmp, "scale-stdout")
	check(os.MkdirAll(spec, 0o755))
	writeSpec := func(body string) {
		check(os.WriteFile(filepath.Join(spec, "storepack.hcl"), []byte("store {\n  dir = \"/nix/store\"\n}\n\n"+body), 0o644))
	}
	exportSpec := func(f, extra string) string {
		return fmt.Sprintf("export \"scale\" {\n  format  = %q\n  paths   = [%q]\n  systems = [\"x86_64-linux\"]\n%s}\n", f, s.Root, extra)
	}
	fresh := func() {
		check(os.RemoveAll(out))
		check(os.RemoveAll(outFile))
		syscall.Sync()
	}
	tw := tabwriter.NewWriter(os.Stdout, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "operation\tstorepack\treal tool\tratio\ttarget\tstorepack peak RSS")
	row := func(name, target string, ours, theirs []string) {
		a := bestWith(ours, os.Environ(), outFile, fresh)
		b := bestWith(theirs, os.Environ(), outFile, fresh)
		fmt.Fprintf(tw, "%s\t%.3fs\t%.3fs (%s)\t%.2f x\t%s\t%.1f MiB\n", name, a.wall.Seconds(), b.wall.Seconds(), theirs[0],
			a.wall.Seconds()/b.wall.Seconds(), target, float64(a.maxKB)/1024)
	}

	if *relOnly {
		releases(bin, tmp, items, files, size)
		return
	}
	if *s3Only {
		s3Rows(tw, bin, tmp, s.Root)
		check(tw.Flush())
		return
	}

	// Planning: the closure's items and layers, no archive.
	writeSpec(exportSpec("docker", "  max_layers = 100\n"))
	p := bestWith([]string{bin, "plan", "-C", spec}, os.Environ(), outFile, func() {})
	fmt.Fprintf(tw, "plan of the docker export\t%.3fs\t\t\t< 0.5 s\t%.1f MiB\n", p.wall.Seconds(), float64(p.maxKB)/1024)
	row("docker export (--no-cache)", "<= 1.0", []string{bin, "export", "--no-cache", "-C", spec, "--out", out}, append([]string{"nix-store", "--export"}, closure...))
	// What this disk takes to store and sync as many bytes as the
	// closure's bundle (nix-store --export's output, left by the row's
	// last run): the floor of an export that syncs its output.
	fi, err := os.Stat(outFile)
	check(err)
	archive := fi.Size()
	ddOut := filepath.Join(tmp, "scale-dd")
	dd := bestWith([]string{"dd", "if=/dev/zero", "of=" + ddOut, "bs=1M", fmt.Sprintf("count=%d", archive>>20), "conv=fsync", "status=none"}, os.Environ(), outFile, func() {
		check(os.RemoveAll(ddOut))
		fresh()
	})
	check(os.RemoveAll(ddOut))
	fmt.Fprintf(tw, "the disk's floor: as many bytes written and synced	%.3fs (dd conv=fsync)				\n", dd.wall.Seconds())
	row("hash of every item", "<= 0.6", append([]string{bin, "hash"}, closure...), append([]string{"nix-hash", "--type", "sha256"}, closure...))

	// Peak memory of each format: each OCI layer compression (the lazy
	// encodings buffer the most), and the packs: a profile of the closure
	// and a program (busybox's true, busybox standing in for the
	// AppImage's runtime too), relocatable.
	type memRow struct {
		format, extra string
		pack          bool
	}
	ociRow := func(c string) memRow { return memRow{"oci", fmt.Sprintf("  compression = %q\n", c), false} }
	rows := []memRow{
		{"nar", "", false}, {"binary-cache", "  compression = \"zstd\"\n", false},
		ociRow("gzip"), ociRow("zstd"), ociRow("zstd:chunked"), ociRow("estargz"),
		{"tarball", "  compression = \"none\"\n", false},
		{"squashfs", "", false}, {"deb", "  compression = \"none\"\n  package {\n    version    = \"1.0\"\n    maintainer = \"Bench <bench@example.org>\"\n  }\n", false},
		{"rpm", "  package {\n    version = \"1.0\"\n  }\n", false},
	}
	if busybox, err := os.ReadFile("/bin/busybox"); err == nil {
		check(os.MkdirAll(filepath.Join(spec, "tools", "bin"), 0o755))
		check(os.WriteFile(filepath.Join(spec, "tools", "bin", "true"), busybox, 0o755))
		rows = append(rows, memRow{"tarball", "  compression = \"none\"\n", true},
			memRow{"appimage", "  entrypoint  = [\"bin/true\"]\n  appimage {\n    runtime = \"/bin/busybox\"\n  }\n", true})
	} else {
		fmt.Fprintf(tw, "relocatable packs\t(not run: %v; install busybox-static)\n", err)
	}
	for _, f := range rows {
		name := f.format
		switch {
		case f.pack:
			name += " (profile, relocatable)"
			writeSpec(fmt.Sprintf("source \"tools\" {\n  path = \"tools\"\n  name = \"tools-1\"\n}\n\n"+
				"export \"scale\" {\n  format      = %q\n  paths       = [source.tools.store_path, %q]\n  systems     = [\"x86_64-linux\"]\n"+
				"  profile     = true\n  relocatable = true\n%s}\n", f.format, s.Root, f.extra))
		case f.format == "oci":
			name += " " + strings.TrimSpace(f.extra)
			writeSpec(exportSpec(f.format, f.extra))
		default:
			writeSpec(exportSpec(f.format, f.extra))
		}
		fresh()
		cmd := exec.Command(bin, "export", "--no-cache", "-C", spec, "--out", out)
		start := time.Now()
		b, err := cmd.CombinedOutput()
		wall := time.Since(start)
		rss := float64(cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss) / 1024
		if err != nil {
			msg := strings.TrimSpace(string(b))
			if i := strings.LastIndex(msg, "\n"); i >= 0 {
				msg = msg[i+1:]
			}
			fmt.Fprintf(tw, "%s export\tfails\t\t\t< 64 MiB\t%.1f MiB (%s)\n", name, rss, msg)
			continue
		}
		fmt.Fprintf(tw, "%s export\t%.3fs\t\t\t< 64 MiB\t%.1f MiB\n", name, wall.Seconds(), rss)
	}

	// Binary caches in S3.
	s3Rows(tw, bin, tmp, s.Root)

	// A push of the 100-layer image, and skopeo copy of the same layout.
	if reg, stop, err := startRegistry(tmp); err != nil {
		fmt.Fprintf(tw, "push of the 100-layer image\t(no registry: %v)\n", err)
	} else {
		defer stop()
		writeSpec(exportSpec("oci", fmt.Sprintf("  max_layers = 100\n  tag        = \"scale:1\"\n  push       = \"%s/bench/scale:1\"\n  insecure   = true\n", reg)))
		// The layout skopeo copies, exported with a layer cache of its
		// own: the second push row sends the blobs it left there.
		layout := filepath.Join(tmp, "scale-layout")
		exported := filepath.Join(tmp, "scale-cache-exported")
		check(os.RemoveAll(exported))
		cmd := exec.Command(bin, "export", "-C", spec, "--out", layout)
		cmd.Env = append(os.Environ(), "XDG_CACHE_HOME="+exported)
		cmd.Stderr = os.Stderr
		check(cmd.Run())
		// Each run of either side goes to a new repository, so that each
		// uploads every blob.
		ours := func(cache string, empty bool) []string {
			pre := ""
			if empty {
				pre = "rm -rf " + cache + " && "
			}
			return []string{"sh", "-c", fmt.Sprintf(`sed -i "s|/bench/scale[0-9]*:1|/bench/scale$(date +%%s%%N):1|" %s/storepack.hcl && %sXDG_CACHE_HOME=%s %s push -C %s >/dev/null`, spec, pre, cache, bin, spec)}
		}
		// skopeo's blob-info cache would mount the blobs it sent in an
		// earlier run into the new repository: it starts empty.
		skopeo := []string{"sh", "-c", fmt.Sprintf(`rm -f /var/lib/containers/cache/blob-info-cache-v1.* "$HOME"/.local/share/containers/cache/blob-info-cache-v1.* && skopeo copy -q --dest-tls-verify=false oci:%s/scale:scale:1 docker://%s/skopeo/scale$(date +%%s%%N):1`, layout, reg)}
		row("push of the 100-layer image, empty layer cache", "<= 0.5", ours(filepath.Join(tmp, "scale-cache-empty"), true), skopeo)
		row("push of the 100-layer image after its export", "<= 0.5", ours(exported, false), skopeo)
	}
	check(tw.Flush())
	releases(bin, tmp, items, files, size)
}

// startRegistry starts the CNCF Distribution registry on a loopback port
// with its storage below tmp.
func startRegistry(tmp string) (string, func(), error) {
	reg, err := exec.LookPath("docker-registry")
	if err != nil {
		return "", nil, fmt.Errorf("docker-registry is not installed (Debian package docker-registry)")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	addr := l.Addr().String()
	l.Close()
	dir := filepath.Join(tmp, "registry")
	cfg := filepath.Join(tmp, "registry.yml")
	if err := os.WriteFile(cfg, []byte("version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: "+dir+"\nhttp:\n  addr: "+addr+"\n"), 0o644); err != nil {
		return "", nil, err
	}
	cmd := exec.Command(reg, "serve", cfg)
	logf, err := os.Create(filepath.Join(tmp, "registry.log"))
	if err != nil {
		return "", nil, err
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	stop := func() { cmd.Process.Kill(); cmd.Wait(); logf.Close() }
	for i := 0; i < 100; i++ {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return addr, stop, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	stop()
	return "", nil, fmt.Errorf("the registry did not listen on %s", addr)
}
