package gen

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/storepack/storepack/format"
	"github.com/storepack/storepack/plan"
	"github.com/storepack/storepack/spec"
	"github.com/storepack/storepack/store"
)

// imageFixture is a closure of n items in dir: item000 (the root, with a
// bin folder on disk) refers to all others; item001 to item00n-1 refer to
// nothing. Each item's FSPath is a folder in a temporary directory.
func imageFixture(t *testing.T, dir store.Dir, n int) *plan.System {
	t.Helper()
	tmp := t.TempDir()
	sys := &plan.System{Name: "x86_64-linux", ClosureDigest: "sha256:0123456789abcdef"}
	var all []store.Path
	for i := 0; i < n; i++ {
		all = append(all, fakePath(dir, fmt.Sprintf("item%03d", i)))
	}
	for i, p := range all {
		fs := filepath.Join(tmp, p.Base())
		if err := os.MkdirAll(filepath.Join(fs, "bin"), 0o755); err != nil {
			t.Fatal(err)
		}
		it := plan.Item{Path: p, FSPath: fs, NarHash: store.Hash(sha256.Sum256([]byte("hash-of-" + p.Name()))), References: []store.Path{}}
		if i == 0 {
			it.References = store.SortPaths(all)
		}
		sys.Closure = append(sys.Closure, it)
	}
	sys.Roots = []store.Path{all[0]}
	return sys
}

func dockerExport(sys *plan.System, mod func(*spec.Export)) *spec.Export {
	e := &spec.Export{
		Name:    "hello",
		Format:  format.Format("docker"),
		Systems: []spec.System{{Name: sys.Name, Paths: sys.Roots}},
	}
	if mod != nil {
		mod(e)
	}
	return e
}

func TestPlanImageLayerCounts(t *testing.T) {
	tests := []struct {
		items, maxLayers int
		// wantReasons counts the layers of each reason but groups;
		// wantGrouped is the number of items in groups.
		wantReasons map[string]int
		wantGrouped int
	}{
		{items: 5, maxLayers: 0, wantReasons: map[string]int{"popular": 4, "root": 1, "extra": 1}}, // default 100
		{items: 5, maxLayers: 1, wantReasons: map[string]int{"all": 1}},
		{items: 5, maxLayers: 2, wantReasons: map[string]int{"all": 1, "extra": 1}},
		{items: 5, maxLayers: 3, wantReasons: map[string]int{"root": 1, "extra": 1}, wantGrouped: 4},
		{items: 5, maxLayers: 6, wantReasons: map[string]int{"popular": 4, "root": 1, "extra": 1}},
		{items: 5, maxLayers: 127, wantReasons: map[string]int{"popular": 4, "root": 1, "extra": 1}},
		// 126 item layers: the root, 62 popular, 63 groups for the other 67.
		{items: 130, maxLayers: 127, wantReasons: map[string]int{"popular": 62, "root": 1, "extra": 1}, wantGrouped: 67},
		// 99 item layers: the root, 49 popular, 49 groups for the other 80.
		{items: 130, maxLayers: 0, wantReasons: map[string]int{"popular": 49, "root": 1, "extra": 1}, wantGrouped: 80},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%d items, max %d", tt.items, tt.maxLayers), func(t *testing.T) {
			sys := imageFixture(t, "/gnu/store", tt.items)
			e := dockerExport(sys, func(e *spec.Export) { e.Image.MaxLayers = tt.maxLayers })
			img, err := PlanImage(context.Background(), e, sys)
			if err != nil {
				t.Fatal(err)
			}
			maxLayers := tt.maxLayers
			if maxLayers == 0 {
				maxLayers = spec.DefaultMaxLayers
			}
			if len(img.Layers) > maxLayers {
				t.Fatalf("%d layers, max_layers %d", len(img.Layers), maxLayers)
			}
			reasons := map[string]int{}
			grouped, groups := 0, 0
			for _, l := range img.Layers {
				if strings.HasPrefix(l.Reason, "group ") {
					grouped += len(l.Items)
					groups++
					continue
				}
				reasons[l.Reason]++
				switch l.Reason {
				case ReasonPopular:
					if len(l.Items) != 1 {
						t.Errorf("popular layer of %d items", len(l.Items))
					}
				case ReasonRoot:
					if !cmp.Equal(l.Items, sys.Roots) {
						t.Errorf("root layer %v, want %v", l.Items, sys.Roots)
					}
				}
			}
			// The groups share the item layers the root and the popular
			// items leave.
			if free := maxLayers - 2 - tt.wantReasons["popular"]; tt.wantGrouped > 0 && (groups == 0 || groups > free) {
				t.Errorf("%d group layers, want 1 to %d", groups, free)
			}
			if grouped != tt.wantGrouped {
				t.Errorf("%d items in groups, want %d", grouped, tt.wantGrouped)
			}
			if diff := cmp.Diff(tt.wantReasons, reasons); diff != "" {
				t.Errorf("layers by reason (-want +got):\n%s", diff)
			}
			if tt.maxLayers != 1 {
				if top := img.Layers[len(img.Layers)-1]; len(top.Items) != 0 || top.Reason != ReasonExtra {
					t.Errorf("top layer: %+v, want the folders and symlinks", top)
				}
			}
			seen := map[store.Path]int{}
			for _, l := range img.Layers {
				for _, p := range l.Items {
					seen[p]++
				}
			}
			for _, it := range sys.Closure {
				if seen[it.Path] != 1 {
					t.Errorf("%s is in %d layers, want 1", it.Path, seen[it.Path])
				}
			}
		})
	}
}

func TestPlanImageMaxLayersOutOfRange(t *testing.T) {
	for _, m := range []int{-1, 128} {
		sys := imageFixture(t, "/gnu/store", 2)
		e := dockerExport(sys, func(e *spec.Export) { e.Image.MaxLayers = m })
		if _, err := PlanImage(context.Background(), e, sys); err == nil || !strings.Contains(err.Error(), "max_layers") {
			t.Errorf("max_layers %d: error %v, want one naming max_layers", m, err)
		}
	}
}

func TestPlanImageEntries(t *testing.T) {
	tests := []struct {
		name     string
		dir      store.Dir
		symlinks map[string]string
		noBin    bool
		rootFile bool // the first root is a file, not a folder
		want     func(root store.Path) []plan.Entry
	}{
		{
			name: "gnu default /bin",
			dir:  "/gnu/store",
			want: func(root store.Path) []plan.Entry {
				return []plan.Entry{
					{Path: "/bin", Type: plan.EntrySymlink, Mode: 0o777, Target: string(root) + "/bin"},
					{Path: "/gnu", Type: plan.EntryDirectory, Mode: 0o755},
					{Path: "/gnu/store", Type: plan.EntryDirectory, Mode: 0o755},
					{Path: "/tmp", Type: plan.EntryDirectory, Mode: 0o1777},
				}
			},
		},
		{
			name:  "nix, root without bin",
			dir:   "/nix/store",
			noBin: true,
			want: func(store.Path) []plan.Entry {
				return []plan.Entry{
					{Path: "/nix", Type: plan.EntryDirectory, Mode: 0o755},
					{Path: "/nix/store", Type: plan.EntryDirectory, Mode: 0o755},
					{Path: "/tmp", Type: plan.EntryDirectory, Mode: 0o1777},
				}
			},
		},
		{
			name:     "gnu, root is a single file",
			dir:      "/gnu/store",
			rootFile: true,
			want: func(store.Path) []plan.Entry {
				return []plan.Entry{
					{Path: "/gnu", Type: plan.EntryDirectory, Mode: 0o755},
					{Path: "/gnu/store", Type: plan.EntryDirectory, Mode: 0o755},
					{Path: "/tmp", Type: plan.EntryDirectory, Mode: 0o1777},
				}
			},
		},
		{
			name:     "no symlinks",
			dir:      "/nix/store",
			symlinks: map[string]string{},
			want: func(store.Path) []plan.Entry {
				return []plan.Entry{
					{Path: "/nix", Type: plan.EntryDirectory, Mode: 0o755},
					{Path: "/nix/store", Type: plan.EntryDirectory, Mode: 0o755},
					{Path: "/tmp", Type: plan.EntryDirectory, Mode: 0o1777},
				}
			},
		},
		{
			name:     "symlinks with parents, deeper store",
			dir:      "/opt/x/store",
			symlinks: map[string]string{"/usr/bin/env": "ROOT/bin/env", "/etc/ssl": "../x", "/usr/lib": "/lib"},
			want: func(root store.Path) []plan.Entry {
				return []plan.Entry{
					{Path: "/etc", Type: plan.EntryDirectory, Mode: 0o755},
					{Path: "/etc/ssl", Type: plan.EntrySymlink, Mode: 0o777, Target: "../x"},
					{Path: "/opt", Type: plan.EntryDirectory, Mode: 0o755},
					{Path: "/opt/x", Type: plan.EntryDirectory, Mode: 0o755},
					{Path: "/opt/x/store", Type: plan.EntryDirectory, Mode: 0o755},
					{Path: "/tmp", Type: plan.EntryDirectory, Mode: 0o1777},
					{Path: "/usr", Type: plan.EntryDirectory, Mode: 0o755},
					{Path: "/usr/bin", Type: plan.EntryDirectory, Mode: 0o755},
					{Path: "/usr/bin/env", Type: plan.EntrySymlink, Mode: 0o777, Target: string(root) + "/bin/env"},
					{Path: "/usr/lib", Type: plan.EntrySymlink, Mode: 0o777, Target: "/lib"},
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sys := imageFixture(t, tt.dir, 3)
			root := sys.Roots[0]
			if tt.noBin || tt.rootFile {
				if err := os.Remove(filepath.Join(sys.Closure[0].FSPath, "bin")); err != nil {
					t.Fatal(err)
				}
			}
			if tt.rootFile {
				fs := sys.Closure[0].FSPath
				if err := os.Remove(fs); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(fs, []byte("#!/bin/sh\n"), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			links := tt.symlinks
			if links != nil {
				links = map[string]string{}
				for k, v := range tt.symlinks {
					links[k] = strings.ReplaceAll(v, "ROOT", string(root))
				}
			}
			e := dockerExport(sys, func(e *spec.Export) { e.Symlinks = links })
			img, err := PlanImage(context.Background(), e, sys)
			if err != nil {
				t.Fatal(err)
			}
			top := img.Layers[len(img.Layers)-1]
			if diff := cmp.Diff(tt.want(root), top.Entries); diff != "" {
				t.Errorf("extra layer entries (-want +got):\n%s", diff)
			}
			parents := storeParents(tt.dir)
			for _, l := range img.Layers[:len(img.Layers)-1] {
				if diff := cmp.Diff(parents, l.Entries); diff != "" {
					t.Errorf("item layer entries (-want +got):\n%s", diff)
				}
			}
		})
	}
}

func TestPlanImageSymlinkErrors(t *testing.T) {
	sys := imageFixture(t, "/gnu/store", 2)
	outside := fakePath("/gnu/store", "not-in-closure")
	tests := []struct {
		links map[string]string
		want  string
	}{
		{map[string]string{"/tmp/x": "/y"}, "temporary folder"},
		{map[string]string{"/tmp": "/y"}, "temporary folder"},
		{map[string]string{"/gnu/store/x": "/y"}, "inside the store folder"},
		{map[string]string{"/gnu": "/y"}, "needs /gnu as a folder"},
		{map[string]string{"/a": "/y", "/a/b": "/z"}, "inside symlink /a"},
		{map[string]string{"relative": "/y"}, "clean absolute path"},
		{map[string]string{"/a/../b": "/y"}, "clean absolute path"},
		{map[string]string{"/": "/y"}, "clean absolute path"},
		{map[string]string{"/a": ""}, "empty target"},
		{map[string]string{"/bin": string(outside) + "/bin"}, "not in the closure"},
	}
	for _, tt := range tests {
		e := dockerExport(sys, func(e *spec.Export) { e.Symlinks = tt.links })
		_, err := PlanImage(context.Background(), e, sys)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("symlinks %v: error %v, want one with %q", tt.links, err, tt.want)
		}
	}
}

func TestPlanImageTag(t *testing.T) {
	tests := []struct {
		name    string
		tag     string
		systems []string
		want    []string // per system
		wantErr string
	}{
		{name: "default", systems: []string{"x86_64-linux"}, want: []string{"hello:0123456789"}},
		{name: "given", tag: "registry.example:5000/team/hello:1.0", systems: []string{"x86_64-linux"}, want: []string{"registry.example:5000/team/hello:1.0"}},
		{name: "no tag part", tag: "hello", systems: []string{"x86_64-linux"}, want: []string{"hello:latest"}},
		{name: "multi", tag: "hello:1.0", systems: []string{"x86_64-linux", "aarch64-linux", "armhf-linux"}, want: []string{"hello:1.0-amd64", "hello:1.0-arm64", "hello:1.0-armv7"}},
		{name: "multi default", systems: []string{"x86_64-linux", "aarch64-linux"}, want: []string{"hello:0123456789-amd64", "hello:0123456789-arm64"}},
		{name: "collision", tag: "hello:1.0", systems: []string{"armhf-linux", "armv7l-linux"}, wantErr: "collide"},
		{name: "upper case", tag: "Hello:1.0", systems: []string{"x86_64-linux"}, wantErr: "lower-case"},
		{name: "bad tag", tag: "hello:-x", systems: []string{"x86_64-linux"}, wantErr: "tag"},
		{name: "digest", tag: "hello@sha256:00", systems: []string{"x86_64-linux"}, wantErr: "digests"},
		{name: "unknown system", systems: []string{"sparc-linux"}, wantErr: "no image architecture"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sys := imageFixture(t, "/gnu/store", 2)
			e := dockerExport(sys, func(e *spec.Export) {
				e.Image.Tag = tt.tag
				e.Systems = nil
				for _, s := range tt.systems {
					e.Systems = append(e.Systems, spec.System{Name: s, Paths: sys.Roots})
				}
			})
			var got []string
			for _, s := range tt.systems {
				sys.Name = s
				img, err := PlanImage(context.Background(), e, sys)
				if err != nil {
					if tt.wantErr == "" || !strings.Contains(err.Error(), tt.wantErr) {
						t.Fatalf("error %v, want %q", err, tt.wantErr)
					}
					return
				}
				got = append(got, img.Tag)
			}
			if tt.wantErr != "" {
				t.Fatalf("no error, want %q", tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("tags (-want +got):\n%s", diff)
			}
		})
	}
}

// TestPlanImageCreated: the image's creation time is the spec's created
// (which spec.Load sets from SOURCE_DATE_EPOCH when the spec has none), in
// UTC, and its mtime that time in seconds.
func TestPlanImageCreated(t *testing.T) {
	tests := []struct {
		created string
		want    time.Time
		wantErr string
	}{
		{want: time.Date(1970, 1, 1, 0, 0, 1, 0, time.UTC)},
		{created: "2023-11-14T22:13:20Z", want: time.Unix(1700000000, 0).UTC()},
		{created: "2024-05-06T07:08:09.5+02:00", want: time.Date(2024, 5, 6, 5, 8, 9, 5e8, time.UTC)},
		{created: "yesterday", wantErr: "RFC 3339"},
		{created: "1969-12-31T23:59:59Z", wantErr: "before 1970"},
	}
	for _, tt := range tests {
		sys := imageFixture(t, "/gnu/store", 2)
		e := dockerExport(sys, func(e *spec.Export) { e.Created = tt.created })
		img, err := PlanImage(context.Background(), e, sys)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("created %q: error %v, want %q", tt.created, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if !img.Created.Equal(tt.want) || img.Created.Location() != time.UTC || img.MTime() != tt.want.Unix() {
			t.Errorf("created %q: created %v, mtime %d; want %v", tt.created, img.Created, img.MTime(), tt.want)
		}
	}
}

// TestPlanImageConfig: the image's settings are the export's, the
// system's block overriding the entry point.
func TestPlanImageConfig(t *testing.T) {
	sys := imageFixture(t, "/gnu/store", 2)
	root := string(sys.Roots[0])
	e := dockerExport(sys, func(e *spec.Export) {
		e.Entrypoint = []string{"/default/entry"}
		e.Cmd = []string{"--help"}
		e.Env = map[string]string{"PATH": "/bin", "LANG": "C.UTF-8", "A": "x=y"}
		e.Image = spec.Image{
			WorkingDir:   "/work",
			User:         "1000:1000",
			Labels:       map[string]string{"org.opencontainers.image.source": "https://example.org"},
			ExposedPorts: []string{"8080/tcp", "53/udp", "9000/tcp"},
			Volumes:      []string{"/data"},
		}
		e.Systems[0].Entrypoint = []string{root + "/bin/hello"}
	})
	img, err := PlanImage(context.Background(), e, sys)
	if err != nil {
		t.Fatal(err)
	}
	want := plan.ImageConfig{
		Entrypoint:   []string{root + "/bin/hello"},
		Cmd:          []string{"--help"},
		Env:          map[string]string{"PATH": "/bin", "LANG": "C.UTF-8", "A": "x=y"},
		WorkingDir:   "/work",
		User:         "1000:1000",
		Labels:       map[string]string{"org.opencontainers.image.source": "https://example.org"},
		ExposedPorts: []string{"8080/tcp", "53/udp", "9000/tcp"},
		Volumes:      []string{"/data"},
	}
	if diff := cmp.Diff(want, img.Config); diff != "" {
		t.Errorf("config (-want +got):\n%s", diff)
	}
	if p := img.Platform; p.Architecture != "amd64" || p.OS != "linux" {
		t.Errorf("platform %+v", p)
	}
}

func TestLayerIDsChangeOnlyWithTheirItems(t *testing.T) {
	sys := imageFixture(t, "/gnu/store", 6)
	e := dockerExport(sys, func(e *spec.Export) { e.Image.MaxLayers = 4 })
	before, err := PlanImage(context.Background(), e, sys)
	if err != nil {
		t.Fatal(err)
	}
	// Change the content of the item that has a layer of its own, then of
	// one in the group (max_layers 4: a popular item, a group, the root,
	// the extra layer), then of the root.
	if len(before.Layers) != 4 || before.Layers[0].Reason != ReasonPopular || before.Layers[1].Reason != ReasonGroup(1) || before.Layers[2].Reason != ReasonRoot {
		t.Fatalf("layers %+v, want popular, group 1, root, extra", before.Layers)
	}
	for _, changed := range []store.Path{before.Layers[0].Items[0], before.Layers[1].Items[1], before.Layers[2].Items[0]} {
		sys2 := *sys
		sys2.Closure = append([]plan.Item(nil), sys.Closure...)
		for i := range sys2.Closure {
			if sys2.Closure[i].Path == changed {
				sys2.Closure[i].NarHash[0] ^= 1
			}
		}
		after, err := PlanImage(context.Background(), e, &sys2)
		if err != nil {
			t.Fatal(err)
		}
		for i := range before.Layers {
			holds := false
			for _, p := range before.Layers[i].Items {
				holds = holds || p == changed
			}
			if same := before.Layers[i].ID == after.Layers[i].ID; same == holds {
				t.Errorf("change of %s: layer %d (holds it: %v) ID changed: %v", changed.Name(), i, holds, !same)
			}
		}
	}
	// And the mtime changes no layer ID.
	e.Created = "2023-11-14T22:13:20Z"
	later, err := PlanImage(context.Background(), e, sys)
	if err != nil {
		t.Fatal(err)
	}
	for i := range before.Layers {
		if before.Layers[i].ID != later.Layers[i].ID {
			t.Errorf("layer %d: ID changed with the creation time", i)
		}
	}
}

func TestModeJSON(t *testing.T) {
	for _, m := range []plan.Mode{0o755, 0o1777, 0o444, 0} {
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		var back plan.Mode
		if err := json.Unmarshal(b, &back); err != nil || back != m {
			t.Errorf("mode %o: JSON %s reads back as %o, %v", m, b, back, err)
		}
	}
	if b, _ := json.Marshal(plan.Mode(0o755)); string(b) != `"0755"` {
		t.Errorf("0755 marshals as %s", b)
	}
	var m plan.Mode
	if err := json.Unmarshal([]byte(`"9"`), &m); err == nil {
		t.Error(`mode "9": no error`)
	}
}

// TestLayerBlocksLeaveNoSlot: layer blocks that leave items over but no
// layer for them are a plan error naming max_layers.
func TestLayerBlocksLeaveNoSlot(t *testing.T) {
	root, err := filepath.Abs("testdata/root")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "storepack.hcl"), []byte(`store {
  dir  = "/gnu/store"
  root = "`+root+`"
  db   = "none"
}

export "hello" {
  format     = "docker"
  systems    = ["x86_64-linux"]
  paths      = ["/gnu/store/qvzbpnllxraamdsh8qmz8rsp7xrsnj9q-hello-2.12"]
  max_layers = 2
  layer "libc" {
    paths = ["/gnu/store/7x3fb49z5m5zc3qp8gj7dskrpcrgc9mi-glibc-2.39"]
  }
}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = Generate(context.Background(), loadSpec(t, dir, nil))
	if err == nil || !strings.Contains(err.Error(), "max_layers = 2") || !strings.Contains(err.Error(), "no layer for the other 3 store items") {
		t.Errorf("Generate: %v; want the max_layers error", err)
	}
}

// TestGenerateContextBoundsBase: a registry base that accepts requests and
// never answers is given up when Generate's context ends, with the
// context's error naming the base, instead of hanging.
func TestGenerateContextBoundsBase(t *testing.T) {
	root, err := filepath.Abs("testdata/root")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	hang := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The registry has the request: end the run's context, then
		// never answer.
		cancel()
		select {
		case <-hang:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(hang)
	host := strings.TrimPrefix(srv.URL, "http://")
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "storepack.hcl"), []byte(`store {
  dir  = "/gnu/store"
  root = "`+root+`"
  db   = "none"
}

export "hello" {
  format   = "oci"
  systems  = ["x86_64-linux"]
  paths    = ["/gnu/store/qvzbpnllxraamdsh8qmz8rsp7xrsnj9q-hello-2.12"]
  base     = "`+host+`/base@sha256:`+strings.Repeat("a", 64)+`"
  insecure = true
}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = Generate(ctx, loadSpec(t, dir, nil))
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), host) {
		t.Errorf("Generate: %v; want the context's cancellation, naming the base", err)
	}
}
