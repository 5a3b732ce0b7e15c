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

// TestEveryFormatHasAWriter: every format of package format's table has
// a writer, and the table names no other.
func TestEveryFormatHasAWriter(t *testing.T) {
	for _, f := range format.All() {
		if writers[f] == nil {
			t.Errorf("format %s has no writer", f)
		}
	}
	if len(writers) != len(format.All()) {
		t.Errorf("%d writers for %d formats", len(writers), len(format.All()))
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
		{Name: "bundle", Format: format.NAR, Output: "b.nar", Systems: []plan.System{{Name: "x86_64-linux", Output: "b.nar", Closure: st.Items}}},
		cacheTestExport(t),
		docker, oci, archive,
		helloTarball(t, "", format.Gzip),
		helloDeb(t, "", format.XZ),
		helloRPM(t, "", format.Zstd),
		helloSquashfs(t, "", format.Gzip),
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
