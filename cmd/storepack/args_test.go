package main

import (
	"errors"
	"flag"
	"io"
	"io/fs"
	"slices"
	"testing"
)

func TestParseInterspersed(t *testing.T) {
	tests := []struct {
		args     []string
		operands []string
		base32   bool
		store    string
		usage    bool // a usage error
	}{
		{[]string{"a"}, []string{"a"}, false, "/s", false},
		{[]string{"--base32", "a"}, []string{"a"}, true, "/s", false},
		{[]string{"a", "--base32"}, []string{"a"}, true, "/s", false},
		{[]string{"a", "--store", "/x", "b", "-base32"}, []string{"a", "b"}, true, "/x", false},
		{[]string{"--store=/y", "a", "b", "c"}, []string{"a", "b", "c"}, false, "/y", false},
		{[]string{"a", "--", "--base32", "-x"}, []string{"a", "--base32", "-x"}, false, "/s", false},
		{[]string{"--", "--store"}, []string{"--store"}, false, "/s", false},
		{[]string{"-"}, []string{"-"}, false, "/s", false},
		{nil, nil, false, "/s", false},
		{[]string{"a", "--nope"}, nil, false, "/s", true},
		{[]string{"a", "--store"}, nil, false, "/s", true},
	}
	for _, tt := range tests {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		b := fs.Bool("base32", false, "")
		s := fs.String("store", "/s", "")
		got, err := parseInterspersed(fs, tt.args)
		var ue *usageError
		if tt.usage {
			if !errors.As(err, &ue) {
				t.Errorf("%q: error %v, want a usage error", tt.args, err)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tt.operands) || *b != tt.base32 || *s != tt.store {
			t.Errorf("%q: operands %q base32 %v store %q, %v; want %q %v %q", tt.args, got, *b, *s, err, tt.operands, tt.base32, tt.store)
		}
	}
}

func TestPathError(t *testing.T) {
	base := errors.New("base")
	tests := []struct {
		path string
		err  error
		want string
	}{
		{"/a", nil, ""},
		{"/a", errors.New("/a: gone"), "/a: gone"},
		{"/a", errors.New("/a/b: a FIFO"), "/a/b: a FIFO"},
		{"/a", &fs.PathError{Op: "lstat", Path: "/a", Err: fs.ErrNotExist}, "/a: lstat: file does not exist"},
		{"/a", errors.New("store database /a: not SQLite"), "/a: store database: not SQLite"},
		{"/a", base, "/a: base"},
		{"/a", errors.New("/ab: other"), "/a: /ab: other"},
	}
	for _, tt := range tests {
		got := pathError(tt.path, tt.err)
		if tt.err == nil {
			if got != nil {
				t.Errorf("pathError(%q, nil) = %v", tt.path, got)
			}
			continue
		}
		if got.Error() != tt.want || !errors.Is(got, tt.err) {
			t.Errorf("pathError(%q, %q) = %q, want %q wrapping the error", tt.path, tt.err, got, tt.want)
		}
	}
}
