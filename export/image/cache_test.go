package image

import (
	"testing"

	"github.com/storepack/storepack/format"
	"github.com/storepack/storepack/internal/fixture"
	"github.com/storepack/storepack/plan"
	"github.com/storepack/storepack/spec"
	"github.com/storepack/storepack/store"
)

// TestKeyCoversInputs checks that everything a layer's bytes depend on
// changes its cache key.
func TestKeyCoversInputs(t *testing.T) {
	f := fixture.Write(t, "/nix/store", "", fixture.Hello())
	e := &spec.Export{Name: "hello", Format: fixture.ImageFormat, Image: spec.Image{MaxLayers: 1}}
	sys := f.System(t, "x86_64-linux", e, "hello-2.12")
	base := Layers(&plan.Export{Systems: []plan.System{*sys}})[0]
	want := key(base, format.None)
	otherHash := base
	otherHash.Items = map[store.Path]*plan.Item{}
	for p, it := range base.Items {
		otherHash.Items[p] = it
	}
	p0 := base.Plan.Items[0]
	changed := *base.Items[p0]
	changed.NarHash[0] ^= 1
	otherHash.Items[p0] = &changed
	otherMTime := base
	otherMTime.MTime++
	otherEntries := base
	l := *base.Plan
	l.Entries = append([]plan.Entry{}, l.Entries...)
	l.Entries[0].Mode = 0o700
	otherEntries.Plan = &l
	tests := []struct {
		name string
		l    Layer
		c    format.Compression
	}{
		{"NAR hash", otherHash, format.None},
		{"mtime", otherMTime, format.None},
		{"entries", otherEntries, format.None},
		{"compression", base, format.Gzip},
	}
	for _, tt := range tests {
		if key(tt.l, tt.c) == want {
			t.Errorf("changing the %s keeps the key", tt.name)
		}
	}
}
