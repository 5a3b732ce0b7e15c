package area

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// wrapper is a stand-in for a wrapper's bytes: code, an empty block, data.
func wrapper() []byte {
	b := []byte("\x7fELF code")
	b = append(b, Magic...)
	b = append(b, make([]byte, Size-MagicLen)...)
	return append(b, "more data"...)
}

func TestRoundTrip(t *testing.T) {
	p := Paths{StoreDir: "/gnu/store", Program: "/gnu/store/0123456789abcdfghijklmnpqrsvwxyz-hello-2.12/bin/hello"}
	w := wrapper()
	b, err := Fill(w, p)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != len(w) {
		t.Errorf("Fill changed the length: %d, want %d", len(b), len(w))
	}
	i := bytes.Index(w, []byte(Magic))
	if !bytes.Equal(b[:i+MagicLen], w[:i+MagicLen]) || !bytes.Equal(b[i+Size:], w[i+Size:]) {
		t.Error("Fill changed bytes outside the block")
	}
	if want := p.Program + "\x00" + p.StoreDir + "\x00"; !bytes.HasPrefix(b[i+MagicLen:], []byte(want)) {
		t.Errorf("block %q, want it to begin with %q", b[i+MagicLen:i+MagicLen+len(want)], want)
	}
	got, err := Read(b)
	if err != nil || got != p {
		t.Errorf("Read = %+v, %v; want %+v", got, err, p)
	}
	if _, err := Fill(b, p); err == nil {
		t.Error("filling a filled block: no error")
	}
	if _, err := Read(w); err == nil {
		t.Error("Read of an empty block: no error")
	}
}

func TestRejects(t *testing.T) {
	if _, err := Read([]byte("plain program")); !errors.Is(err, ErrNone) {
		t.Errorf("no block: %v, want ErrNone", err)
	}
	two := append(wrapper(), wrapper()...)
	if _, err := Find(two); err == nil || !strings.Contains(err.Error(), "more than one") {
		t.Errorf("two blocks: %v", err)
	}
	if _, err := Find(wrapper()[:100]); err == nil {
		t.Error("a block cut short: no error")
	}
	raw := func(data string) []byte {
		b := wrapper()
		copy(b[bytes.Index(b, []byte(Magic))+MagicLen:], data)
		return b
	}
	for name, b := range map[string][]byte{
		"one path":        raw("/nix/store/x-y/bin/z\x00"),
		"program outside": raw("/gnu/store/x-y/bin/z\x00/nix/store\x00"),
		"trailing bytes":  raw("/nix/store/x-y/bin/z\x00/nix/store\x00junk"),
	} {
		if _, err := Read(b); err == nil || errors.Is(err, ErrNone) {
			t.Errorf("%s: %v, want an error", name, err)
		}
	}
	for _, bad := range []Paths{
		{StoreDir: "/", Program: "/x"},
		{StoreDir: "gnu/store", Program: "gnu/store/x"},
		{StoreDir: "/gnu/store", Program: "/gnu/store/../etc/passwd"},
		{StoreDir: "/gnu/store", Program: "/nix/store/x"},
		{StoreDir: "/gnu/store", Program: "/gnu/store/" + strings.Repeat("x", 8200)},
	} {
		if _, err := Fill(wrapper(), bad); err == nil {
			t.Errorf("Fill(%+v): no error", bad)
		}
	}
}
