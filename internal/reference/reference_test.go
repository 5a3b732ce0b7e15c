package reference

import (
	"strings"
	"testing"

	gcrname "github.com/google/go-containerregistry/pkg/name"
)

// TestParse checks the reference grammar, and that every
// reference it accepts is one go-containerregistry (which pushes) takes
// too, with the same name and tag.
func TestParse(t *testing.T) {
	tests := []struct {
		ref, name, tag string // name "" when the reference is wrong
	}{
		{"hello", "hello", "latest"},
		{"hello:1.0", "hello", "1.0"},
		{"demo/hello:v1_2-rc.3", "demo/hello", "v1_2-rc.3"},
		{"registry.example.org:5000/demo/hello:1", "registry.example.org:5000/demo/hello", "1"},
		{"localhost/hello", "localhost/hello", "latest"},
		{"127.0.0.1:5000/hello:x", "127.0.0.1:5000/hello", "x"},
		{"a__b/c--d.e_f", "a__b/c--d.e_f", "latest"},
		{"Hello", "", ""},
		{"hello:", "", ""},
		{"hello:-x", "", ""},
		{"hello:" + strings.Repeat("x", 129), "", ""},
		{"hello@sha256:" + strings.Repeat("0", 64), "", ""},
		{"hello..x", "", ""},
		{"/hello", "", ""},
		{"hello/", "", ""},
		{"bad_host:x/hello", "", ""},
		{"", "", ""},
	}
	for _, tt := range tests {
		name, tag, err := Parse(tt.ref)
		if (err == nil) != (tt.name != "") || name != tt.name || tag != tt.tag {
			t.Errorf("Parse(%q) = %q, %q, %v; want %q, %q", tt.ref, name, tag, err, tt.name, tt.tag)
		}
		if err != nil {
			continue
		}
		ref, err := gcrname.NewTag(tt.ref)
		if err != nil {
			t.Errorf("%q: go-containerregistry refuses it: %v", tt.ref, err)
		} else if ref.TagStr() != tag {
			t.Errorf("%q: go-containerregistry reads the tag %q, we %q", tt.ref, ref.TagStr(), tag)
		}
	}
}

func TestRepository(t *testing.T) {
	for ref, want := range map[string]string{
		"hello":                            "hello",
		"hello:1.0":                        "hello",
		"localhost:5000/demo/hello:1":      "localhost:5000/demo/hello",
		"localhost:5000/hello@sha256:abcd": "localhost:5000/hello",
	} {
		if got := Repository(ref); got != want {
			t.Errorf("Repository(%q) = %q, want %q", ref, got, want)
		}
	}
}

// TestNormalize checks full names against go-containerregistry's, which
// spells docker.io as index.docker.io.
func TestNormalize(t *testing.T) {
	tests := []struct{ ref, want string }{
		{"hello", "docker.io/library/hello:latest"},
		{"hello:1.0", "docker.io/library/hello:1.0"},
		{"demo/hello:1", "docker.io/demo/hello:1"},
		{"docker.io/hello:1", "docker.io/library/hello:1"},
		{"localhost/hello", "localhost/hello:latest"},
		{"localhost:5000/a/b:2", "localhost:5000/a/b:2"},
		{"registry.example.org/hello:3", "registry.example.org/hello:3"},
		{"Hello", ""},
	}
	for _, tt := range tests {
		got, err := Normalize(tt.ref)
		if tt.want == "" {
			if err == nil {
				t.Errorf("Normalize(%q) = %q, want an error", tt.ref, got)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("Normalize(%q) = %q, %v; want %q", tt.ref, got, err, tt.want)
		}
		r, err := gcrname.ParseReference(tt.ref)
		if err != nil {
			t.Fatal(err)
		}
		if gcr := strings.Replace(r.Name(), "index.docker.io/", "docker.io/", 1); gcr != got {
			t.Errorf("Normalize(%q) = %q, go-containerregistry says %q", tt.ref, got, gcr)
		}
	}
}
