package format

import "testing"

func TestTable(t *testing.T) {
	tests := []struct {
		f      Format
		kind   Kind
		output string
		comp   []Compression
	}{
		{NAR, Store, "hello.nar", nil},
		{Docker, Image, "hello.tar", []Compression{None, Gzip, Zstd}},
		{OCI, Image, "hello", []Compression{None, Gzip, Zstd}},
		{BinaryCache, Store, "hello", []Compression{XZ, Zstd, None}},
		{Tarball, Tree, "hello.tar.gz", []Compression{Gzip, Zstd, XZ, None}},
		{Deb, Tree, "hello.deb", []Compression{XZ, Gzip, Zstd, None}},
		{RPM, Tree, "hello.rpm", []Compression{Zstd, Gzip, XZ}},
		{Squashfs, Tree, "hello.squashfs", []Compression{Gzip, Zstd, XZ}},
	}
	if got := All(); len(got) != len(tests) {
		t.Fatalf("All() = %v, want %d formats", got, len(tests))
	}
	for i, tt := range tests {
		if All()[i] != tt.f {
			t.Errorf("All()[%d] = %s, want %s", i, All()[i], tt.f)
		}
		f, ok := Parse(string(tt.f))
		if !ok || f != tt.f {
			t.Errorf("Parse(%q) = %q, %v", tt.f, f, ok)
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
		if _, ok := Parse(bad); ok {
			t.Errorf("Parse(%q) accepted it", bad)
		}
	}
}

func TestExtByCompression(t *testing.T) {
	for _, tt := range []struct {
		c    Compression
		want string
	}{
		{Gzip, "hello.tar.gz"}, {Zstd, "hello.tar.zst"}, {XZ, "hello.tar.xz"}, {None, "hello.tar"},
	} {
		if got := Tarball.Output("hello", tt.c); got != tt.want {
			t.Errorf("tarball output with %s = %q, want %q", tt.c, got, tt.want)
		}
	}
	if got := NAR.Output("hello", ""); got != "hello.nar" {
		t.Errorf("nar output = %q", got)
	}
}

func TestJoin(t *testing.T) {
	for _, tt := range []struct {
		in   []Format
		want string
	}{
		{nil, ""},
		{[]Format{NAR}, "nar"},
		{OfKind(Image), "docker and oci"},
		{All(), "nar, docker, oci, binary-cache, tarball, deb, rpm and squashfs"},
		{NixSigning(), "binary-cache"},
	} {
		if got := Join(tt.in); got != tt.want {
			t.Errorf("Join(%v) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
