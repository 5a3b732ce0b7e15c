package trailer

import (
	"bytes"
	"errors"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	tr := Trailer{StoreDir: "/gnu/store", Program: "/gnu/store/0123456789abcdfghijklmnpqrsvwxyz-hello-2.12/bin/hello"}
	prog := []byte("\x7fELF program bytes")
	b, err := Append(prog, tr)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b, prog) || len(b) != len(prog)+Size(tr) || !bytes.HasSuffix(b, []byte(Magic)) {
		t.Fatalf("Append: %q", b)
	}
	got, err := Read(bytes.NewReader(b), int64(len(b)))
	if err != nil || got != tr {
		t.Errorf("Read = %+v, %v; want %+v", got, err, tr)
	}
}

func TestReadRejects(t *testing.T) {
	if _, err := Read(bytes.NewReader([]byte("plain program")), 13); !errors.Is(err, ErrNone) {
		t.Errorf("no trailer: %v, want ErrNone", err)
	}
	good, _ := Append(nil, Trailer{StoreDir: "/nix/store", Program: "/nix/store/x-y/bin/z"})
	for name, b := range map[string][]byte{
		"length beyond the file": append([]byte{0xff, 0xff, 0, 0}, Magic...),
		"one path":               append([]byte("/nix/store\x00\x0b\x00\x00\x00"), Magic...),
		"program outside":        mustAppendRaw("/nix/store", "/gnu/store/x-y/bin/z"),
		"truncated":              good[3:],
	} {
		if _, err := Read(bytes.NewReader(b), int64(len(b))); err == nil || errors.Is(err, ErrNone) {
			t.Errorf("%s: %v, want an error", name, err)
		}
	}
	for _, bad := range []Trailer{
		{StoreDir: "/", Program: "/x"},
		{StoreDir: "gnu/store", Program: "gnu/store/x"},
		{StoreDir: "/gnu/store", Program: "/gnu/store/../etc/passwd"},
		{StoreDir: "/gnu/store", Program: "/nix/store/x"},
	} {
		if _, err := Append(nil, bad); err == nil {
			t.Errorf("Append(%+v): no error", bad)
		}
	}
}

// mustAppendRaw writes a trailer without Append's checks.
func mustAppendRaw(dir, program string) []byte {
	data := dir + "\x00" + program + "\x00"
	n := len(data)
	return append([]byte(data), append([]byte{byte(n), byte(n >> 8), 0, 0}, Magic...)...)
}
