package export

import (
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/storepack/storepack/format"
	"github.com/storepack/storepack/internal/fixture"
	"github.com/storepack/storepack/internal/layercache"
	"github.com/storepack/storepack/internal/progress"
	"github.com/storepack/storepack/plan"
	"github.com/storepack/storepack/store"
)

// recorder is a progress.Reporter keeping every export's count and error.
type recorder struct {
	mu    sync.Mutex
	tasks []*progress.Task
	ended map[*progress.Task]error
}

func (r *recorder) Begin(name string, totalBytes, totalItems int64) *progress.Task {
	r.mu.Lock()
	defer r.mu.Unlock()
	t := progress.NewTask(name, totalBytes, totalItems, time.Now())
	r.tasks = append(r.tasks, t)
	return t
}

func (r *recorder) End(t *progress.Task, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ended == nil {
		r.ended = map[*progress.Task]error{}
	}
	r.ended[t] = err
}

// want is the work an export reads, computed from its plan here: the
// distinct layers' items for images, each system's closure for nar
// bundles, each distinct item for binary caches.
func want(e *plan.Export) (bytes, items int64) {
	seenLayer := map[string]bool{}
	seenItem := map[store.Path]bool{}
	for _, sys := range e.Systems {
		size := map[store.Path]int64{}
		for _, it := range sys.Closure {
			size[it.Path] = it.NarSize
		}
		switch e.Format {
		case format.Format("docker"), format.Format("oci"):
			for _, l := range sys.Image.Layers {
				if !seenLayer[l.ID] {
					seenLayer[l.ID] = true
					for _, p := range l.Items {
						bytes += size[p]
						items++
					}
				}
			}
		default:
			for _, it := range sys.Closure {
				if e.Format == "binary-cache" && seenItem[it.Path] {
					continue
				}
				seenItem[it.Path] = true
				bytes += it.NarSize
				items++
			}
		}
	}
	return bytes, items
}

// TestProgressReachesTotals writes exports of every format over fake
// stores with a recording reporter: each export begins with the totals
// its plan gives and ends, without error, with as many bytes and items
// done as those totals. Exports again with the store moved away (so that
// nothing can be read) count the items all the same: image layers from a
// warm layer cache, binary cache entries already in the cache folder.
func TestProgressReachesTotals(t *testing.T) {
	type tc struct {
		name  string
		build func(t *testing.T, root string) *plan.Export
		again bool // export again, the store moved away
	}
	images := func(c dockerCase, f format.Format, compression format.Compression, output string) func(*testing.T, string) *plan.Export {
		return func(t *testing.T, root string) *plan.Export {
			e := buildImages(t, c, f, compression, root)
			e.Output = output
			return e
		}
	}
	cases := []tc{
		{"nar two systems", func(t *testing.T, root string) *plan.Export {
			f := fixture.Write(t, "/nix/store", root, fixture.Hello())
			return &plan.Export{Name: "bundle", Format: "nar", Systems: []plan.System{
				{Name: "x86_64-linux", Output: "a.nar", Closure: f.Items},
				{Name: "aarch64-linux", Output: "b.nar", Closure: f.Items[:2]},
			}}
		}, false},
		{"binary cache", func(t *testing.T, root string) *plan.Export { return cacheTestExport(t) }, true},
	}
	for _, c := range dockerCases {
		cases = append(cases, tc{"docker " + c.name, images(c, format.Format("docker"), "", "hello.tar"), true})
	}
	for _, c := range ociCases {
		cases = append(cases, tc{"oci " + c.name(), images(c.dockerCase, format.Format("oci"), c.compression, "hello"), true})
	}
	cases = append(cases, tc{"oci archive", images(dockerCases[0], format.Format("oci"), "gzip", "hello.tar"), true})

	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			root := filepath.Join(t.TempDir(), "store")
			e := c.build(t, root)
			wantBytes, wantItems := want(e)
			if wantBytes == 0 || wantItems == 0 {
				t.Fatalf("the fixture has no work: %d bytes, %d items", wantBytes, wantItems)
			}
			cache, err := layercache.Open(filepath.Join(t.TempDir(), "cache"))
			if err != nil {
				t.Fatal(err)
			}
			out := t.TempDir()
			check := func(stage string) {
				t.Helper()
				rec := &recorder{}
				p := &plan.Plan{Exports: []plan.Export{*e}}
				if _, err := Write(p, out, Options{Cache: cache, Progress: rec}); err != nil {
					t.Fatalf("%s: %v", stage, err)
				}
				if len(rec.tasks) != 1 {
					t.Fatalf("%s: %d exports reported, want 1", stage, len(rec.tasks))
				}
				count := rec.tasks[0]
				s := count.Snapshot()
				err, ended := rec.ended[count]
				if !ended || err != nil {
					t.Errorf("%s: ended %v, with error %v", stage, ended, err)
				}
				if s.TotalBytes != wantBytes || s.TotalItems != wantItems {
					t.Errorf("%s: totals %d bytes, %d items; the plan has %d, %d", stage, s.TotalBytes, s.TotalItems, wantBytes, wantItems)
				}
				if s.Bytes != s.TotalBytes || s.Items != s.TotalItems {
					t.Errorf("%s: done %d of %d bytes, %d of %d items", stage, s.Bytes, s.TotalBytes, s.Items, s.TotalItems)
				}
			}
			check("cold")
			if c.again {
				items := filepath.Dir(e.Systems[0].Closure[0].FSPath)
				if err := os.Rename(items, items+".away"); err != nil {
					t.Fatal(err)
				}
				check("again, the store moved away")
			}
		})
	}
}

// TestProgressFailure checks that an export that fails ends its count
// with the error, short of its totals.
func TestProgressFailure(t *testing.T) {
	f := fixture.Write(t, "/nix/store", "", fixture.Hello())
	items := append([]plan.Item{}, f.Items...)
	items[1].NarSize++ // the second item's files "changed"
	p := &plan.Plan{Exports: []plan.Export{{Name: "bundle", Format: "nar", Systems: []plan.System{{Name: "x86_64-linux", Output: "a.nar", Closure: items}}}}}
	rec := &recorder{}
	if _, err := Write(p, t.TempDir(), Options{Progress: rec}); err == nil {
		t.Fatal("the export of a changed item succeeded")
	}
	if len(rec.tasks) != 1 || rec.ended[rec.tasks[0]] == nil {
		t.Fatalf("%d tasks, the first ended with %v; want 1 ended with the error", len(rec.tasks), rec.ended)
	}
	if s := rec.tasks[0].Snapshot(); s.Items != 1 || s.Bytes != items[0].NarSize+items[1].NarSize-1 {
		t.Errorf("done %d bytes, %d items; want the first item's and the second's bytes read: %d, 1", s.Bytes, s.Items, items[0].NarSize+items[1].NarSize-1)
	}
}
