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

// TestPackageArches checks the package architecture of every known system.
func TestPackageArches(t *testing.T) {
	want := map[string][2]string{
		"x86_64-linux": {"amd64", "x86_64"}, "i686-linux": {"i386", "i686"},
		"aarch64-linux": {"arm64", "aarch64"}, "armhf-linux": {"armhf", "armv7hl"},
		"armv6l-linux": {"armel", "armv6hl"}, "powerpc64le-linux": {"ppc64el", "ppc64le"},
		"riscv64-linux": {"riscv64", "riscv64"}, "s390x-linux": {"s390x", "s390x"},
		"mips64el-linux": {"mips64el", "mips64el"},
	}
	for _, s := range Systems() {
		p, err := Lookup(s)
		if err != nil {
			t.Fatal(err)
		}
		if p.Debian() == "" || p.RPM() == "" {
			t.Errorf("%s: no package architecture (deb %q, rpm %q)", s, p.Debian(), p.RPM())
		}
		if w, ok := want[s]; ok && (p.Debian() != w[0] || p.RPM() != w[1]) {
			t.Errorf("%s: deb %q rpm %q, want %q %q", s, p.Debian(), p.RPM(), w[0], w[1])
		}
	}
}
