package store

import (
	"strings"
	"testing"
)

const testHash = "fv3w4afhjjxq9558jq5kaj3jcj81a8rc"

func TestParse(t *testing.T) {
	long := strings.Repeat("n", MaxNameLen)
	for _, c := range []struct {
		dir  Dir
		in   string
		err  string // "" for valid
		name string
	}{
		{"/gnu/store", "/gnu/store/" + testHash + "-hello-2.12", "", "hello-2.12"},
		{"/nix/store", "/nix/store/" + testHash + "-hello-2.12", "", "hello-2.12"},
		{"/opt/my store", "/opt/my store/" + testHash + "-x", "", "x"},
		{"/nix/store", "/nix/store/" + testHash + "-A+._?=-z", "", "A+._?=-z"},
		{"/nix/store", "/nix/store/" + testHash + "-" + long, "", long},
		{"/nix/store", "/nix/store/" + testHash + "-.hidden", "starts with a dot", ""},
		{"/nix/store", "/nix/store/" + testHash + "-" + long + "n", "longer than", ""},
		{"/nix/store", "/nix/store/" + testHash + "-", "is not <32-character hash>-<name>", ""},
		{"/nix/store", "/nix/store/" + testHash, "is not <32-character hash>-<name>", ""},
		{"/nix/store", "/nix/store/" + testHash + "_hello", "is not <32-character hash>-<name>", ""},
		{"/nix/store", "/nix/store/" + testHash[:31] + "-hello", "is not <32-character hash>-<name>", ""},
		{"/nix/store", "/nix/store/e" + testHash[1:] + "-hello", "outside Nix base32", ""},
		{"/nix/store", "/nix/store/" + strings.ToUpper(testHash) + "-hello", "outside Nix base32", ""},
		{"/nix/store", "/nix/store/" + testHash + "-hel lo", "not allowed", ""},
		{"/nix/store", "/nix/store/" + testHash + "-hel/lo", "not allowed", ""},
		{"/nix/store", "/nix/store/" + testHash + "-héllo", "not allowed", ""},
		{"/nix/store", "/gnu/store/" + testHash + "-hello", "not in the store folder /nix/store", ""},
		{"/nix/store", "/nix/storex/" + testHash + "-hello", "not in the store folder", ""},
		{"/nix/store", "/nix/store", "not in the store folder", ""},
		{"/nix/store", "nix/store/" + testHash + "-hello", "not in the store folder", ""},
		{"/nix/store", "/nix/store//" + testHash + "-hello", "not a valid store path", ""},
	} {
		t.Run(c.in, func(t *testing.T) {
			p, err := c.dir.Parse(c.in)
			if c.err != "" {
				if err == nil {
					t.Fatalf("Parse(%q) = %q, want an error", c.in, p)
				}
				if !strings.Contains(err.Error(), c.err) || !strings.Contains(err.Error(), c.in) {
					t.Errorf("Parse(%q) error %q: want it to name the path and say %q", c.in, err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse(%q): %v", c.in, err)
			}
			if string(p) != c.in || p.Dir() != c.dir || p.HashPart() != testHash || p.Name() != c.name ||
				p.Base() != testHash+"-"+c.name || p.String() != c.in {
				t.Errorf("Parse(%q) = %q: dir %q hash %q name %q base %q", c.in, p, p.Dir(), p.HashPart(), p.Name(), p.Base())
			}
		})
	}
}

func TestParseInside(t *testing.T) {
	item := "/gnu/store/" + testHash + "-hello-2.12"
	for _, c := range []struct {
		in, item, rest, err string
	}{
		{item, item, "", ""},
		{item + "/bin/hello", item, "/bin/hello", ""},
		{item + "/", item, "/", ""},
		{"/gnu/store/" + testHash + "-.x/bin", "", "", "starts with a dot"},
		{"/nix/store/" + testHash + "-hello/bin", "", "", "not in the store folder"},
	} {
		t.Run(c.in, func(t *testing.T) {
			p, rest, err := Dir("/gnu/store").ParseInside(c.in)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("ParseInside(%q) = %q, %q, %v; want an error saying %q", c.in, p, rest, err, c.err)
				}
				return
			}
			if err != nil || string(p) != c.item || rest != c.rest {
				t.Errorf("ParseInside(%q) = %q, %q, %v; want %q, %q", c.in, p, rest, err, c.item, c.rest)
			}
		})
	}
}

func TestParseDir(t *testing.T) {
	for _, c := range []struct {
		in  string
		err string
	}{
		{"/gnu/store", ""},
		{"/nix/store", ""},
		{"/tmp/root/nix/store", ""},
		{"", "not an absolute path"},
		{"gnu/store", "not an absolute path"},
		{"/", "not a clean path"},
		{"/gnu/store/", "not a clean path"},
		{"/gnu//store", "not a clean path"},
		{"/gnu/../store", "not a clean path"},
	} {
		t.Run(c.in, func(t *testing.T) {
			d, err := ParseDir(c.in)
			if c.err == "" {
				if err != nil || string(d) != c.in {
					t.Errorf("ParseDir(%q) = %q, %v", c.in, d, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("ParseDir(%q) = %q, %v; want an error saying %q", c.in, d, err, c.err)
			}
		})
	}
}

func TestSplitName(t *testing.T) {
	for _, tt := range []struct{ in, name, version string }{
		{"hello-2.12", "hello", "2.12"},
		{"gcc-lib", "gcc-lib", ""},
		{"glibc-2.39-52", "glibc", "2.39-52"},
		{"python3.12-requests-2.31.0", "python3.12-requests", "2.31.0"},
		{"app", "app", ""},
		{"source-1a", "source", "1a"},
		{"x-", "x-", ""},
	} {
		name, version := SplitName(tt.in)
		if name != tt.name || version != tt.version {
			t.Errorf("SplitName(%q) = %q, %q; want %q, %q", tt.in, name, version, tt.name, tt.version)
		}
	}
}
