package storepack

import (
	"bytes"
	"crypto/sha256"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	digest "github.com/opencontainers/go-digest"

	"github.com/storepack/storepack/plan"
	"github.com/storepack/storepack/store"
)

// graphSystem is a system whose closure is graph (name -> referenced
// names), rooted at roots, each item 1 KiB per letter of its name.
func graphSystem(graph map[string][]string, roots ...string) *plan.System {
	const d = store.Dir("/nix/store")
	path := func(name string) store.Path {
		sum := sha256.Sum256([]byte(name))
		return d.Join(store.Encode32(sum[:20]) + "-" + name)
	}
	s := &plan.System{Name: "x86_64-linux"}
	for _, r := range roots {
		s.Roots = append(s.Roots, path(r))
	}
	for name, refs := range graph {
		it := plan.Item{Path: path(name), NarSize: int64(len(name)) * 1024, References: []store.Path{path(name)}}
		for _, r := range refs {
			it.References = append(it.References, path(r))
		}
		it.References = store.SortPaths(it.References)
		s.Closure = append(s.Closure, it)
	}
	return s
}

func TestWhyChain(t *testing.T) {
	graph := map[string][]string{
		"app-1.0": {"python3-3.12", "bash-5.2"}, "python3-3.12": {"openssl-3.0", "glibc-2.39"},
		"openssl-3.0": {"glibc-2.39"}, "bash-5.2": {"glibc-2.39"}, "glibc-2.39": nil, "orphan": nil,
	}
	s := graphSystem(graph, "app-1.0")
	tests := []struct {
		find    string
		want    []string // names along the chain
		wantErr string
	}{
		{find: "openssl-3.0", want: []string{"app-1.0", "python3-3.12", "openssl-3.0"}},
		{find: "glibc-2.39", want: []string{"app-1.0", "", "glibc-2.39"}}, // the shortest
		{find: "app-1.0", want: []string{"app-1.0"}},
		{find: string(s.Roots[0]), want: []string{"app-1.0"}},
		{find: "zlib", wantErr: "not in the closure"},
		{find: "orphan", wantErr: "no root refers to it"},
	}
	for _, tt := range tests {
		t.Run(tt.find, func(t *testing.T) {
			chain, err := whyChain(s, tt.find)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one saying %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, p := range chain {
				got = append(got, p.Name())
			}
			// bash and python3 are both one step from app: the chain to
			// glibc goes through the one whose path sorts first.
			if tt.find == "glibc-2.39" {
				tt.want[1] = firstByPath(s, "bash-5.2", "python3-3.12")
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("chain (-want +got):\n%s", diff)
			}
		})
	}
}

// firstByPath is whichever of the names' items of s has the first path.
func firstByPath(s *plan.System, a, b string) string {
	var pa, pb store.Path
	for _, it := range s.Closure {
		switch it.Path.Name() {
		case a:
			pa = it.Path
		case b:
			pb = it.Path
		}
	}
	if pa < pb {
		return a
	}
	return b
}

func TestWriteWhy(t *testing.T) {
	var b bytes.Buffer
	WriteWhy(&b, []store.Path{"/nix/store/a", "/nix/store/b", "/nix/store/c"})
	want := "/nix/store/a\n└───/nix/store/b\n    └───/nix/store/c\n"
	if b.String() != want {
		t.Errorf("WriteWhy:\n%s\nwant:\n%s", b.String(), want)
	}
}

func TestHumanBytesAndBar(t *testing.T) {
	for _, tt := range []struct {
		n    int64
		want string
	}{{0, "0 B"}, {1023, "1023 B"}, {1024, "1.0 KiB"}, {1536, "1.5 KiB"}, {5 << 20, "5.0 MiB"}, {3 << 30, "3.0 GiB"}} {
		if got := humanBytes(tt.n); got != tt.want {
			t.Errorf("humanBytes(%d) = %q, want %q", tt.n, got, tt.want)
		}
	}
	for _, tt := range []struct {
		n, most int64
		hashes  int
	}{{0, 100, 0}, {1, 100, 1}, {50, 100, 12}, {100, 100, summaryBar}, {5, 0, 0}} {
		b := bar(tt.n, tt.most)
		if got := strings.Count(b, "#"); got != tt.hashes || len(b) != summaryBar+2 {
			t.Errorf("bar(%d, %d) = %q: %d #, want %d, width %d", tt.n, tt.most, b, got, tt.hashes, summaryBar+2)
		}
	}
}

func TestDiffLayers(t *testing.T) {
	l := func(d string, size int64) LayerEntry {
		return LayerEntry{Digest: digest.Digest("sha256:" + d), Size: size}
	}
	prev := []ImageLayers{{Name: "a", Layers: []LayerEntry{l("1", 10), l("2", 20)}}, {Name: "b", Layers: []LayerEntry{l("3", 30)}}}
	tests := []struct {
		name string
		next []ImageLayers
		want []ImageLayers
	}{
		{"same", prev, nil},
		{"one layer changed", []ImageLayers{{Name: "a", Layers: []LayerEntry{l("1", 10), l("4", 40)}}},
			[]ImageLayers{{Name: "a", Layers: []LayerEntry{l("4", 40)}}}},
		{"a layer another image had", []ImageLayers{{Name: "a", Layers: []LayerEntry{l("3", 30), l("5", 50)}}},
			[]ImageLayers{{Name: "a", Layers: []LayerEntry{l("5", 50)}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, DiffLayers(prev, tt.next)); diff != "" {
				t.Errorf("DiffLayers (-want +got):\n%s", diff)
			}
		})
	}
	var b bytes.Buffer
	WriteDiff(&b, DiffLayers(prev, tests[1].next), tests[1].next)
	if !strings.HasSuffix(b.String(), "1 new layers, 40 B (40 bytes) of 50 B (50 bytes)\n") {
		t.Errorf("WriteDiff:\n%s", b.String())
	}
}
