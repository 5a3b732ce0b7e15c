package platform

import "testing"

func TestLookup(t *testing.T) {
	tests := []struct {
		system string
		want   Platform
	}{
		{"x86_64-linux", Platform{"amd64", "linux", ""}},
		{"i686-linux", Platform{"386", "linux", ""}},
		{"aarch64-linux", Platform{"arm64", "linux", ""}},
		{"armhf-linux", Platform{"arm", "linux", "v7"}},
		{"armv7l-linux", Platform{"arm", "linux", "v7"}},
		{"armv6l-linux", Platform{"arm", "linux", "v6"}},
		{"mips64el-linux", Platform{"mips64le", "linux", ""}},
		{"powerpc64le-linux", Platform{"ppc64le", "linux", ""}},
		{"riscv64-linux", Platform{"riscv64", "linux", ""}},
		{"s390x-linux", Platform{"s390x", "linux", ""}},
	}
	for _, tt := range tests {
		got, err := Lookup(tt.system)
		if err != nil || got != tt.want {
			t.Errorf("Lookup(%q) = %+v, %v; want %+v", tt.system, got, err, tt.want)
		}
	}
	for _, bad := range []string{"x86_64-darwin", "i586-gnu", "sparc-linux", "x86_64", ""} {
		if _, err := Lookup(bad); err == nil {
			t.Errorf("Lookup(%q): no error", bad)
		}
	}
	if got := Systems(); len(got) != 11 || got[0] != "aarch64-linux" {
		t.Errorf("Systems() = %v", got)
	}
}
