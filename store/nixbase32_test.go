package store

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"math/rand/v2"
	"os"
	"strings"
	"testing"

	"github.com/storepack/storepack/internal/oracle"
)

// nix32Vector is one line of testdata/nix32.txt.
type nix32Vector struct {
	typ, hex, nix32 string
}

func readNix32Vectors(t *testing.T) []nix32Vector {
	t.Helper()
	f, err := os.Open("testdata/nix32.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var vs []nix32Vector
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fs := strings.Fields(line)
		if len(fs) != 3 {
			t.Fatalf("testdata/nix32.txt: bad line %q", line)
		}
		vs = append(vs, nix32Vector{fs[0], fs[1], fs[2]})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(vs) == 0 {
		t.Fatal("testdata/nix32.txt has no vectors")
	}
	return vs
}

func TestNix32Vectors(t *testing.T) {
	for _, v := range readNix32Vectors(t) {
		t.Run(v.typ+"/"+v.hex, func(t *testing.T) {
			raw, err := hex.DecodeString(v.hex)
			if err != nil {
				t.Fatal(err)
			}
			if got := Encode32(raw); got != v.nix32 {
				t.Errorf("Encode32(%s) = %s, want %s", v.hex, got, v.nix32)
			}
			if got := EncodedLen32(len(raw)); got != len(v.nix32) {
				t.Errorf("EncodedLen32(%d) = %d, want %d", len(raw), got, len(v.nix32))
			}
			back, err := Decode32(v.nix32)
			if err != nil {
				t.Fatalf("Decode32(%s): %v", v.nix32, err)
			}
			if !bytes.Equal(back, raw) {
				t.Errorf("Decode32(%s) = %x, want %s", v.nix32, back, v.hex)
			}
		})
	}
}

// TestNix32Oracle checks the vectors against nix-hash in both directions.
func TestNix32Oracle(t *testing.T) {
	nixHash := oracle.Require(t, "nix-hash")
	for _, v := range readNix32Vectors(t) {
		for _, c := range []struct{ flag, in, want string }{
			{"--to-base32", v.hex, v.nix32},
			{"--to-base16", v.nix32, v.hex},
		} {
			out := oracle.Output(t, oracle.Nix(t, nil, nixHash, "--type", v.typ, c.flag, c.in))
			if got := strings.TrimSpace(string(out)); got != c.want {
				t.Errorf("nix-hash --type %s %s %s = %s, testdata says %s", v.typ, c.flag, c.in, got, c.want)
			}
		}
	}
}

// TestNix32Invalid checks what Decode32 rejects; nix-hash rejects the same
// strings (TestNix32InvalidOracle).
func TestNix32Invalid(t *testing.T) {
	for _, c := range invalidNix32 {
		t.Run(c.name, func(t *testing.T) {
			b, err := Decode32(c.s)
			if err == nil {
				t.Fatalf("Decode32(%q) = %x, want an error", c.s, b)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("Decode32(%q) error %q does not mention %q", c.s, err, c.want)
			}
		})
	}
}

var invalidNix32 = []struct {
	name, typ, s, want string
}{
	{"letter e", "sha1", "e" + strings.Repeat("0", 31), "invalid character"},
	{"letter o", "sha1", strings.Repeat("0", 31) + "o", "invalid character"},
	{"letter u", "sha1", strings.Repeat("0", 15) + "u" + strings.Repeat("0", 16), "invalid character"},
	{"letter t", "sha1", strings.Repeat("0", 20) + "t" + strings.Repeat("0", 11), "invalid character"},
	{"upper case", "sha1", strings.Repeat("0", 31) + "A", "invalid character"},
	{"dash", "sha1", strings.Repeat("0", 31) + "-", "invalid character"},
	{"length 3", "", "000", "invalid length"},
	{"length 1", "", "0", "invalid length"},
	{"length 6", "", "000000", "invalid length"},
	{"sha256 overflow", "sha256", "2" + strings.Repeat("0", 51), "out of range"},
	{"sha256 all z", "sha256", strings.Repeat("z", 52), "out of range"},
	{"md5 overflow", "md5", "8" + strings.Repeat("0", 25), "out of range"},
}

func TestNix32InvalidOracle(t *testing.T) {
	nixHash := oracle.Require(t, "nix-hash")
	for _, c := range invalidNix32 {
		if c.typ == "" {
			continue // no hash type has this length
		}
		out, err := oracle.Nix(t, nil, nixHash, "--type", c.typ, "--to-base16", c.s).CombinedOutput()
		if err == nil {
			t.Errorf("%s: nix-hash --type %s --to-base16 %s accepted it: %s", c.name, c.typ, c.s, out)
		}
	}
}

func TestNix32RoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for n := 0; n <= 70; n++ {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		s := Encode32(b)
		if len(s) != EncodedLen32(n) {
			t.Fatalf("len(Encode32(%d bytes)) = %d, want %d", n, len(s), EncodedLen32(n))
		}
		for i := 0; i < len(s); i++ {
			if strings.IndexByte(nix32Alphabet, s[i]) < 0 {
				t.Fatalf("Encode32(%x) = %q has %q", b, s, s[i])
			}
		}
		back, err := Decode32(s)
		if err != nil {
			t.Fatalf("Decode32(Encode32(%x)): %v", b, err)
		}
		if !bytes.Equal(back, b) {
			t.Fatalf("Decode32(Encode32(%x)) = %x", b, back)
		}
		if got := string(AppendEncode32([]byte("x:"), b)); got != "x:"+s {
			t.Fatalf("AppendEncode32 = %q, want %q", got, "x:"+s)
		}
	}
}
