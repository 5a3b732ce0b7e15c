package format

import (
	"slices"
	"testing"
)

// fake is a registered format of the tests.
type fake struct{ d Def }

func (f fake) Def() *Def { return &f.d }

// The registry of this package's tests: two fake formats.
func init() {
	Register(
		fake{Def{Name: "one", Kind: Store, Ext: ".one", PerSystem: true}},
		fake{Def{Name: "two", Kind: Tree, Compressions: []Compression{Gzip, None},
			Exts:  map[Compression]string{Gzip: ".t.gz", None: ".t"},
			Attrs: []string{"symlinks"}, Blocks: []Block{{Name: "package", Required: true}}}},
	)
}

func TestRegistry(t *testing.T) {
	if got := All(); !slices.Equal(got, []Format{"one", "two"}) {
		t.Errorf("All() = %v", got)
	}
	for _, tt := range []struct {
		f      Format
		kind   Kind
		output string
	}{
		{"one", Store, "hello.one"},
		{"two", Tree, "hello.t.gz"},
	} {
		f, ok := Parse(string(tt.f))
		if !ok || f != tt.f || f.Entry() == nil {
			t.Errorf("Parse(%q) = %q, %v", tt.f, f, ok)
		}
		if f.Kind() != tt.kind {
			t.Errorf("%s: kind %s, want %s", f, f.Kind(), tt.kind)
		}
		if got := f.Output("hello", f.Def().Compression()); got != tt.output {
			t.Errorf("%s: default output %q, want %q", f, got, tt.output)
		}
	}
	if got := Format("two").Output("hello", None); got != "hello.t" {
		t.Errorf("output by compression = %q", got)
	}
	for _, bad := range []string{"", "three", "One"} {
		if _, ok := Parse(bad); ok {
			t.Errorf("Parse(%q) accepted it", bad)
		}
	}
	if !Format("two").Takes(None) || Format("two").Takes(XZ) || Format("one").Takes(Gzip) {
		t.Error("Takes is wrong")
	}
	if got := TakingAttr("symlinks"); !slices.Equal(got, []Format{"two"}) {
		t.Errorf("TakingAttr(symlinks) = %v", got)
	}
	if got := TakingAttr("compression"); !slices.Equal(got, []Format{"two"}) {
		t.Errorf("TakingAttr(compression) = %v", got)
	}
	if got := TakingBlock("package"); !slices.Equal(got, []Format{"two"}) {
		t.Errorf("TakingBlock(package) = %v", got)
	}
	if b, ok := Format("two").Def().Block("package"); !ok || !b.Required {
		t.Errorf("Block(package) = %+v, %v", b, ok)
	}
	defer func() {
		if recover() == nil {
			t.Error("registering a name twice did not panic")
		}
	}()
	Register(fake{Def{Name: "one"}})
}

func TestJoin(t *testing.T) {
	for _, tt := range []struct {
		in   []Format
		want string
	}{
		{nil, ""},
		{[]Format{"nar"}, "nar"},
		{[]Format{"docker", "oci"}, "docker and oci"},
		{[]Format{"a", "b", "c"}, "a, b and c"},
	} {
		if got := Join(tt.in); got != tt.want {
			t.Errorf("Join(%v) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
