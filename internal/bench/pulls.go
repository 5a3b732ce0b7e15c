package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"text/tabwriter"

	"github.com/storepack/storepack/internal/nixtest"
	"github.com/storepack/storepack/internal/oracle"
)

// meter is a TCP proxy in front of a registry that counts the bytes each
// way: what pushes send and what pulls fetch, headers included.
type meter struct {
	addr     string
	up, down atomic.Int64
}

// startMeter proxies a loopback port to target until the process ends.
func startMeter(target string) *meter {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	check(err)
	m := &meter{addr: l.Addr().String()}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				t, err := net.Dial("tcp", target)
				if err != nil {
					return
				}
				defer t.Close()
				done := make(chan struct{})
				// Counted as they pass: connections are kept alive
				// between requests.
				go func() {
					io.Copy(counting{t, &m.up}, c)
					t.(*net.TCPConn).CloseWrite()
					close(done)
				}()
				io.Copy(counting{c, &m.down}, t)
				c.(*net.TCPConn).CloseWrite()
				<-done
			}()
		}
	}()
	return m
}

// registryLog reads what the registry's log (tmp/registry.log, from
// startRegistry) holds past offset, and the offset of its end.
func registryLog(tmp string, offset int) (string, int) {
	b, err := os.ReadFile(filepath.Join(tmp, "registry.log"))
	check(err)
	return string(b[offset:]), len(b)
}

// counting adds what it writes to w to n.
type counting struct {
	w io.Writer
	n *atomic.Int64
}

func (c counting) Write(p []byte) (int, error) {
	k, err := c.w.Write(p)
	c.n.Add(int64(k))
	return k, err
}

// reset zeroes the counts.
func (m *meter) reset() { m.up.Store(0); m.down.Store(0) }

// manifestLayers fetches an image manifest's layers: digest → size.
func manifestLayers(registry, repo, tag string) map[string]int64 {
	req, err := http.NewRequest("GET", "http://"+registry+"/v2/"+repo+"/manifests/"+tag, nil)
	check(err)
	req.Header.Set("Accept", "application/vnd.oci.image.manifest.v1+json")
	resp, err := http.DefaultClient.Do(req)
	check(err)
	defer resp.Body.Close()
	var m struct {
		Layers []struct {
			Digest string `json:"digest"`
			Size   int64  `json:"size"`
		} `json:"layers"`
	}
	check(json.NewDecoder(resp.Body).Decode(&m))
	out := map[string]int64{}
	for _, l := range m.Layers {
		out[l.Digest] = l.Size
	}
	return out
}

// pullRows prints what a push and a pull of a new release send over the
// wire, counted by a proxy in front of a loopback registry: zstd:chunked
// layers, podman with partial pulls on (its own storage), for the top
// item rebuilt and for item items/2 rebuilt with its dependents. A third
// push sends the new release to another repository, which mounts the
// blobs it shares with the first (mount_from) instead of uploading them.
func pullRows(bin, tmp string, items, files, size int, changedOf func(v1, v2 nixtest.Release) int64) {
	podman, err := exec.LookPath("podman")
	if err != nil {
		fmt.Printf("\n(no push and pull rows: podman is not installed)\n")
		return
	}
	reg, stop, err := startRegistry(tmp)
	if err != nil {
		fmt.Printf("\n(no push and pull rows: %v)\n", err)
		return
	}
	defer stop()
	m := startMeter(reg)

	// podman with a storage of its own, partial pulls on.
	pp, err := oracle.NewPrivatePodman(podman, filepath.Join(tmp, "podman"))
	check(err)
	defer pp.Close()
	// partial turns partial pulls on or off: the first release's pull,
	// which has nothing to reuse, goes without (podman 4.3's partial
	// pull of a 2 GB image can panic in containers/image's reading of
	// multipart range responses).
	partial := func(on bool) { check(pp.SetPartial(on)) }
	pmErr := func(args ...string) error {
		if b, err := pp.Command(args...).CombinedOutput(); err != nil {
			msg := string(b)
			if i := strings.Index(msg, "panic:"); i >= 0 {
				msg, _, _ = strings.Cut(msg[i:], "\n")
			} else if len(msg) > 300 {
				msg = msg[len(msg)-300:]
			}
			return fmt.Errorf("podman %s: %v: %s", strings.Join(args, " "), err, msg)
		}
		return nil
	}
	pm := func(args ...string) { check(pmErr(args...)) }

	push := func(r nixtest.Release, repo, tag, extra string) {
		s, err := nixtest.BuildScaleRelease(items, files, size, "storepack-scale", r)
		check(err)
		spec := filepath.Join(tmp, "pull-spec")
		check(os.MkdirAll(spec, 0o755))
		check(os.WriteFile(filepath.Join(spec, "storepack.hcl"), fmt.Appendf(nil,
			"store {\n  dir = \"/nix/store\"\n}\n\nexport \"scale\" {\n  format      = \"oci\"\n  paths       = [%q]\n  systems     = [\"x86_64-linux\"]\n  max_layers  = 100\n  compression = \"zstd:chunked\"\n  tag         = \"scale:%s\"\n  push        = \"%s/%s:%s\"\n  insecure    = true\n%s}\n",
			s.Root, tag, m.addr, repo, tag, extra), 0o644))
		cmd := exec.Command(bin, "push", "-C", spec)
		cmd.Env = append(os.Environ(), "XDG_CACHE_HOME="+filepath.Join(tmp, "pull-cache"))
		if b, err := cmd.CombinedOutput(); err != nil {
			check(fmt.Errorf("storepack push: %v: %s", err, b))
		}
	}

	fmt.Printf("\npush and pull of a new release (zstd:chunked, max_layers = 100, bytes over the wire to a loopback registry, podman %s with partial pulls)\n\n", strings.TrimSpace(output(podman, "version", "--format", "{{.Client.Version}}")))
	tw := tabwriter.NewWriter(os.Stdout, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "release (v1 -> v2)\tv1 image\tv2's new layers\tpush of v2 sent (all requests)\tpull of v2: layer bytes served\tchanged items (NAR)\tpull goal: <= 1.2 x changed\tpush of v2 to another repository")
	for i, sc := range []struct {
		name   string
		v1, v2 nixtest.Release
	}{
		{"top item changed", nixtest.Release{Bump: -1}, nixtest.Release{Bump: items - 1}},
		{"one mid-graph item changed", nixtest.Release{Bump: -1}, nixtest.Release{Bump: items / 2}},
	} {
		repo := fmt.Sprintf("bench/release%d", i)
		push(sc.v1, repo, "1", "")
		partial(false)
		pm("pull", "--tls-verify=false", m.addr+"/"+repo+":1")
		partial(true)
		m.reset()
		push(sc.v2, repo, "2", "")
		sent := m.up.Load()
		l1, l2 := manifestLayers(reg, repo, "1"), manifestLayers(reg, repo, "2")
		var v1Bytes, newBytes int64
		for _, n := range l1 {
			v1Bytes += n
		}
		for d, n := range l2 {
			if _, ok := l1[d]; !ok {
				newBytes += n
			}
		}
		_, offset := registryLog(tmp, 0)
		pullErr := pmErr("pull", "--tls-verify=false", m.addr+"/"+repo+":2")
		log, offset := registryLog(tmp, offset)
		fetched := oracle.BlobBytesServed(log, repo, func(d string) bool { _, ok := l2[d]; return ok })
		m.reset()
		push(sc.v2, repo+"-copy", "2", fmt.Sprintf("  mount_from  = [%q]\n", repo))
		mounted := m.up.Load()
		log, _ = registryLog(tmp, offset)
		mounts := 0
		for _, line := range strings.Split(log, "\n") {
			if strings.Contains(line, "http.request.method=POST") && strings.Contains(line, "mount=") && strings.Contains(line, "http.response.status=201") {
				mounts++
			}
		}
		changed := changedOf(sc.v1, sc.v2)
		met := "no"
		if fetched*10 <= changed*12 {
			met = "yes"
		}
		if pullErr != nil {
			met = "failed: " + pullErr.Error()
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s (%.2f x new layers)\t%s (%.2f x changed)\t%s\t%s\t%s sent, %d of %d layers mounted\n", sc.name, mb(v1Bytes), mb(newBytes),
			mb(sent), float64(sent)/float64(newBytes), mb(fetched), float64(fetched)/float64(changed), mb(changed), met, mb(mounted), mounts, len(l2))
		pm("rmi", "--all", "--force")
	}
	check(tw.Flush())
}
