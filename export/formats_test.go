package export

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/storepack/storepack/format"
	"github.com/storepack/storepack/internal/fixture"
	"github.com/storepack/storepack/internal/layercache"
	"github.com/storepack/storepack/plan"
)

// TestEveryFormatHasAWriter: every registered format has a writer.
func TestEveryFormatHasAWriter(t *testing.T) {
	for _, f := range format.All() {
		if _, ok := writerOf(f); !ok {
			t.Errorf("format %s has no writer", f)
		}
	}
}

// TestTable: the registry holds the formats, each with its kind, default
// output and compressions, in the order messages list them.
func TestTable(t *testing.T) {
	tests := []struct {
		f      format.Format
		kind   format.Kind
		output string
		comp   []format.Compression
	}{
		{"nar", format.Store, "hello.nar", nil},
		{"docker", format.Image, "hello.tar", []format.Compression{format.None, format.Gzip, format.Zstd}},
		{"oci", format.Image, "hello", []format.Compression{format.None, format.Gzip, format.Zstd, format.ZstdChunked, format.Estargz}},
		{"binary-cache", format.Store, "hello", []format.Compression{format.XZ, format.Zstd, format.None}},
		{"tarball", format.Tree, "hello.tar.gz", []format.Compression{format.Gzip, format.Zstd, format.XZ, format.None}},
		{"deb", format.Tree, "hello.deb", []format.Compression{format.XZ, format.Gzip, format.Zstd, format.None}},
		{"rpm", format.Tree, "hello.rpm", []format.Compression{format.Zstd, format.Gzip, format.XZ}},
		{"squashfs", format.Tree, "hello.squashfs", []format.Compression{format.Gzip, format.Zstd, format.XZ}},
		{"appimage", format.Tree, "hello.AppImage", []format.Compression{format.Zstd, format.Gzip}},
	}
	if got := format.All(); len(got) != len(tests) {
		t.Fatalf("format.All() = %v, want %d formats", got, len(tests))
	}
	for i, tt := range tests {
		if format.All()[i] != tt.f {
			t.Errorf("format.All()[%d] = %s, want %s", i, format.All()[i], tt.f)
		}
		f, ok := format.Parse(string(tt.f))
		if !ok || f != tt.f {
			t.Errorf("format.Parse(%q) = %q, %v", tt.f, f, ok)
		}
		if f.Kind() != tt.kind {
			t.Errorf("%s: kind %s, want %s", f, f.Kind(), tt.kind)
		}
		if got := f.Output("hello", f.Def().Compression()); got != tt.output {
			t.Errorf("%s: default output %q, want %q", f, got, tt.output)
		}
		for _, c := range tt.comp {
			if !f.Takes(c) {
				t.Errorf("%s does not take %s", f, c)
			}
		}
		if len(tt.comp) > 0 && f.Def().Compressions[0] != tt.comp[0] {
			t.Errorf("%s: default compression %s, want %s", f, f.Def().Compressions[0], tt.comp[0])
		}
	}
	for _, bad := range []string{"", "tar", "Docker", "binary_cache"} {
		if _, ok := format.Parse(bad); ok {
			t.Errorf("format.Parse(%q) accepted it", bad)
		}
	}
}

func TestNixSigning(t *testing.T) {
	got := format.Where(func(d format.Def) bool { return d.SignKey == format.NixKey })
	if format.Join(got) != "binary-cache" {
		t.Errorf("Nix-signed formats: %v", got)
	}
}

// TestWriteLeavesThePlan: writing an export of every format, twice (the
// second time from a warm layer cache), leaves its plan as it was: what
// export computes it returns, it never writes into the plan.
func TestWriteLeavesThePlan(t *testing.T) {
	st := fixture.Write(t, "/nix/store", "", fixture.Hello())
	docker, oci, archive := dockerCases[0].build(t, ""), ociCases[1].build(t, ""), ociCases[3].build(t, "")
	archive.Output = "hello.tar"
	exports := []*plan.Export{
		{Name: "bundle", Format: format.Format("nar"), Output: "b.nar", Systems: []plan.System{{Name: "x86_64-linux", Output: "b.nar", Closure: st.Items}}},
		cacheTestExport(t),
		docker, oci, archive,
		helloTarball(t, "", format.Gzip),
		helloDeb(t, "", format.XZ),
		helloRPM(t, "", format.Zstd),
		helloSquashfs(t, "", format.Gzip),
		helloAppImage(t, "", format.Zstd),
	}
	cache, err := layercache.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	formats := map[format.Format]bool{}
	for _, e := range exports {
		formats[e.Format] = true
		before, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		for range 2 {
			if _, err := writeExport(&plan.Plan{}, e, t.TempDir(), Options{Cache: cache}); err != nil {
				t.Fatal(err)
			}
		}
		if after, _ := json.Marshal(e); !bytes.Equal(before, after) {
			t.Errorf("%s export %q: writing it changed its plan", e.Format, e.Name)
		}
	}
	for _, f := range format.All() {
		if !formats[f] {
			t.Errorf("no %s export checked", f)
		}
	}
}
