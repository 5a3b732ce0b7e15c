package binarycache

import (
	"crypto/sha256"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/storepack/storepack/store"
)

// testPath makes a valid store path in dir from a seed and a name.
func testPath(dir store.Dir, seed, name string) store.Path {
	sum := sha256.Sum256([]byte(seed))
	return dir.Join(store.Encode32(sum[:20]) + "-" + name)
}

func testHash(seed string) store.Hash { return store.Hash(sha256.Sum256([]byte(seed))) }

// sampleNarInfo is a narinfo with every field set.
func sampleNarInfo() *NarInfo {
	d := store.Dir("/nix/store")
	p := testPath(d, "p", "hello-2.12")
	refs := sortedRefs([]store.Path{testPath(d, "glibc", "glibc-2.35"), p, testPath(d, "bash", "bash-5.1")})
	fh := testHash("file")
	return &NarInfo{
		StorePath:   p,
		URL:         "nar/" + store.Encode32(fh[:]) + ".nar.xz",
		Compression: CompressionXZ,
		FileHash:    fh,
		FileSize:    1234,
		NarHash:     testHash("nar"),
		NarSize:     5678,
		References:  refs,
		Deriver:     testPath(d, "drv", "hello-2.12.drv"),
		System:      "x86_64-linux",
		Sigs: []string{
			"a-1:" + base64.StdEncoding.EncodeToString(make([]byte, 64)),
			"b-1:" + base64.StdEncoding.EncodeToString([]byte(strings.Repeat("b", 64))),
		},
		CA: "fixed:r:sha256:" + store.Encode32(fh[:]),
	}
}

func TestNarInfoRoundTrip(t *testing.T) {
	tests := []struct {
		name   string
		modify func(n *NarInfo)
	}{
		{"every field", func(n *NarInfo) {}},
		{"no references, deriver, system, sig or ca", func(n *NarInfo) {
			n.References, n.Deriver, n.System, n.Sigs, n.CA = nil, "", "", nil, ""
		}},
		{"guix store, zstd", func(n *NarInfo) {
			d := store.Dir("/gnu/store")
			n.StorePath = testPath(d, "g", "guile-3.0")
			n.References = []store.Path{n.StorePath}
			n.Deriver = ""
			n.Compression, n.URL = CompressionZstd, "nar/x.nar.zst"
		}},
		{"no compression", func(n *NarInfo) { n.Compression, n.URL = CompressionNone, "nar/x.nar" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := sampleNarInfo()
			tt.modify(n)
			text, err := n.MarshalText()
			if err != nil {
				t.Fatal(err)
			}
			got, err := ParseNarInfo(text)
			if err != nil {
				t.Fatalf("ParseNarInfo:\n%s\n%v", text, err)
			}
			if diff := cmp.Diff(n, got); diff != "" {
				t.Errorf("round trip (-want +got):\n%s", diff)
			}
			again, err := got.MarshalText()
			if err != nil {
				t.Fatal(err)
			}
			if string(again) != string(text) {
				t.Errorf("written twice differently:\n%s\n%s", text, again)
			}
		})
	}
}

// TestNarInfoLayout checks the lines MarshalText writes against the
// fields, one by one, in the order Nix writes them.
func TestNarInfoLayout(t *testing.T) {
	n := sampleNarInfo()
	text, err := n.MarshalText()
	if err != nil {
		t.Fatal(err)
	}
	var refs []string
	for _, r := range n.References {
		refs = append(refs, r.Base())
	}
	want := []string{
		"StorePath: " + string(n.StorePath),
		"URL: " + n.URL,
		"Compression: xz",
		"FileHash: sha256:" + store.Encode32(n.FileHash[:]),
		"FileSize: 1234",
		"NarHash: sha256:" + store.Encode32(n.NarHash[:]),
		"NarSize: 5678",
		"References: " + strings.Join(refs, " "),
		"Deriver: " + n.Deriver.Base(),
		"System: x86_64-linux",
		"Sig: " + n.Sigs[0],
		"Sig: " + n.Sigs[1],
		"CA: " + n.CA,
		"",
	}
	if diff := cmp.Diff(want, strings.Split(string(text), "\n")); diff != "" {
		t.Errorf("lines (-want +got):\n%s", diff)
	}
	empty := &NarInfo{StorePath: n.StorePath, URL: n.URL, Compression: "xz", FileHash: n.FileHash, FileSize: 1, NarHash: n.NarHash, NarSize: 8}
	text, err = empty.MarshalText()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(string(text), "\nReferences: \n") {
		t.Errorf("no references: want a last line \"References: \" as Nix writes, got\n%s", text)
	}
}

// TestParseNarInfoStrict feeds ParseNarInfo a valid narinfo with one
// line changed, added or removed, and checks the error.
func TestParseNarInfoStrict(t *testing.T) {
	text, err := sampleNarInfo().MarshalText()
	if err != nil {
		t.Fatal(err)
	}
	good := string(text)
	line := func(prefix string) string {
		for _, l := range strings.Split(good, "\n") {
			if strings.HasPrefix(l, prefix) {
				return l
			}
		}
		t.Fatalf("no line %q", prefix)
		return ""
	}
	replace := func(prefix, with string) string { return strings.Replace(good, line(prefix)+"\n", with, 1) }
	refs := strings.Fields(strings.TrimPrefix(line("References: "), "References: "))
	tests := []struct {
		name, text, want string
	}{
		{"empty", "", "empty narinfo"},
		{"no final newline", strings.TrimSuffix(good, "\n"), "does not end with a newline"},
		{"blank line", good + "\n", `line 14: "" is not "Key: value"`},
		{"no space after colon", replace("References: ", "References:\n"), "line 8: \"References:\" has no space after the colon"},
		{"CRLF", strings.ReplaceAll(good, "\n", "\r\n"), "control character"},
		{"unknown field", good + "Foo: bar\n", `line 14: unknown field "Foo"`},
		{"lower-case field", strings.Replace(good, "NarSize:", "narsize:", 1), `unknown field "narsize"`},
		{"repeated field", good + line("NarSize: ") + "\n", "line 14: NarSize repeats the field of line 7"},
		{"missing StorePath", replace("StorePath: ", ""), "no StorePath field"},
		{"missing References", replace("References: ", ""), "no References field"},
		{"missing FileHash", replace("FileHash: ", ""), "no FileHash field"},
		{"relative store path", replace("StorePath: ", "StorePath: nix/store/"+sampleNarInfo().StorePath.Base()+"\n"), "line 1: StorePath"},
		{"bad store path", replace("StorePath: ", "StorePath: /nix/store/eeee-x\n"), "line 1: StorePath"},
		{"absolute URL", replace("URL: ", "URL: /nar/x.nar.xz\n"), "line 2: URL \"/nar/x.nar.xz\" is not a clean relative path"},
		{"URL going up", replace("URL: ", "URL: ../x.nar.xz\n"), "not a clean relative path"},
		{"http URL", replace("URL: ", "URL: http://example.org/x.nar\n"), "not a clean relative path"},
		{"unknown compression", replace("Compression: ", "Compression: lzma\n"), "line 3: Compression \"lzma\" is not one of"},
		{"hex hash", replace("NarHash: ", "NarHash: sha256:"+sampleNarInfo().NarHash.Hex()+"\n"), "line 6: NarHash: hash"},
		{"sha1 hash", replace("FileHash: ", "FileHash: sha1:0000000000000000000000000000000000000000\n"), "does not start with sha256:"},
		{"hash out of range", replace("NarHash: ", "NarHash: sha256:"+strings.Repeat("z", 52)+"\n"), "out of range"},
		{"zero NarSize", replace("NarSize: ", "NarSize: 0\n"), "line 7: NarSize: \"0\" is not a positive decimal number"},
		{"negative FileSize", replace("FileSize: ", "FileSize: -1\n"), "FileSize: \"-1\" is not a positive"},
		{"leading zero", replace("FileSize: ", "FileSize: 01234\n"), "is not a positive decimal number"},
		{"huge size", replace("NarSize: ", "NarSize: 99999999999999999999\n"), "out of range"},
		{"bad reference", replace("References: ", "References: nope\n"), "line 8: References: \"nope\""},
		{"unsorted references", replace("References: ", "References: "+refs[1]+" "+refs[0]+"\n"), "are not sorted or not unique"},
		{"repeated reference", replace("References: ", "References: "+refs[0]+" "+refs[0]+"\n"), "are not sorted or not unique"},
		{"double space in references", replace("References: ", "References: "+refs[0]+"  "+refs[1]+"\n"), "References: \"\""},
		{"full path reference", replace("References: ", "References: /nix/store/"+refs[0]+"\n"), "References:"},
		{"bad deriver", replace("Deriver: ", "Deriver: x.drv\n"), "line 9: Deriver"},
		{"empty system", replace("System: ", "System: \n"), "line 10: empty System"},
		{"system with a space", replace("System: ", "System: x86_64 linux\n"), "System \"x86_64 linux\" holds white space"},
		{"sig without name", replace("Sig: a-1", "Sig: "+strings.Repeat("A", 86)+"==\n"), "line 11: Sig: signature"},
		{"sig of wrong size", replace("Sig: a-1", "Sig: a-1:AAAA\n"), "base64 of 64 bytes"},
		{"sig not base64", replace("Sig: a-1", "Sig: a-1:"+strings.Repeat("*", 88)+"\n"), "base64 of 64 bytes"},
		{"empty CA", replace("CA: ", "CA: \n"), "empty CA"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.text == good {
				t.Fatal("the case changes nothing")
			}
			_, err := ParseNarInfo([]byte(tt.text))
			if err == nil {
				t.Fatalf("ParseNarInfo accepted\n%s", tt.text)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
		})
	}
	t.Run("unknown-deriver", func(t *testing.T) {
		n, err := ParseNarInfo([]byte(replace("Deriver: ", "Deriver: unknown-deriver\n")))
		if err != nil {
			t.Fatal(err)
		}
		if n.Deriver != "" {
			t.Errorf("Deriver = %q, want none", n.Deriver)
		}
	})
}

func TestMarshalTextRejects(t *testing.T) {
	tests := []struct {
		name   string
		modify func(n *NarInfo)
		want   string
	}{
		{"reference elsewhere", func(n *NarInfo) { n.References = []store.Path{testPath("/gnu/store", "x", "x")} }, "not in the store folder /nix/store"},
		{"unsorted references", func(n *NarInfo) { n.References[0], n.References[1] = n.References[1], n.References[0] }, "not sorted"},
		{"zero size", func(n *NarInfo) { n.FileSize = 0 }, "FileSize 0"},
		{"bad sig", func(n *NarInfo) { n.Sigs = []string{"x"} }, "Sig: signature \"x\""},
		{"bad URL", func(n *NarInfo) { n.URL = "" }, "URL \"\""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := sampleNarInfo()
			tt.modify(n)
			_, err := n.MarshalText()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("MarshalText error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestFingerprint(t *testing.T) {
	n := sampleNarInfo()
	shuffled := []store.Path{n.References[2], n.References[0], n.References[1]}
	got := Fingerprint(n.StorePath, n.NarHash, n.NarSize, shuffled)
	parts := strings.Split(got, ";")
	want := []string{"1", string(n.StorePath), n.NarHash.String(), "5678",
		string(n.References[0]) + "," + string(n.References[1]) + "," + string(n.References[2])}
	if diff := cmp.Diff(want, parts); diff != "" {
		t.Errorf("fingerprint fields (-want +got):\n%s", diff)
	}
	if n.Fingerprint() != got {
		t.Errorf("NarInfo.Fingerprint %q != Fingerprint %q", n.Fingerprint(), got)
	}
	if empty := Fingerprint(n.StorePath, n.NarHash, 1, nil); !strings.HasSuffix(empty, ";1;") {
		t.Errorf("no references: %q, want it to end with \";1;\"", empty)
	}
}

func TestCacheInfo(t *testing.T) {
	ci := &CacheInfo{StoreDir: "/gnu/store", WantMassQuery: 1, Priority: 40}
	text, err := ci.MarshalText()
	if err != nil {
		t.Fatal(err)
	}
	if want := "StoreDir: /gnu/store\nWantMassQuery: 1\nPriority: 40\n"; string(text) != want {
		t.Errorf("MarshalText = %q, want %q", text, want)
	}
	got, err := ParseCacheInfo(text)
	if err != nil {
		t.Fatal(err)
	}
	if *got != *ci {
		t.Errorf("round trip: %+v, want %+v", got, ci)
	}
	only, err := ParseCacheInfo([]byte("StoreDir: /nix/store\n"))
	if err != nil {
		t.Fatal(err)
	}
	if want := (CacheInfo{StoreDir: "/nix/store", WantMassQuery: -1, Priority: -1}); *only != want {
		t.Errorf("StoreDir only: %+v, want %+v", only, want)
	}
	bad := []struct{ text, want string }{
		{"", "empty"},
		{"StoreDir: /nix/store", "newline"},
		{"WantMassQuery: 1\n", "no StoreDir"},
		{"StoreDir: nix/store\n", "not an absolute path"},
		{"StoreDir: /nix/store/\n", "not a clean path"},
		{"StoreDir: /nix/store\nStoreDir: /gnu/store\n", "repeats"},
		{"StoreDir: /nix/store\nWantMassQuery: yes\n", "not 0 or 1"},
		{"StoreDir: /nix/store\nPriority: -4\n", "not a number"},
		{"StoreDir: /nix/store\nFoo: 1\n", "unknown field"},
		{"StoreDir:/nix/store\n", "is not \"Key: value\""},
	}
	for _, b := range bad {
		if _, err := ParseCacheInfo([]byte(b.text)); err == nil || !strings.Contains(err.Error(), b.want) {
			t.Errorf("ParseCacheInfo(%q) error %v, want one containing %q", b.text, err, b.want)
		}
	}
}
