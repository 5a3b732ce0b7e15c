package nar_test

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/storepack/storepack/store/nar"
)

// FuzzReader feeds arbitrary bytes to the Reader. It must never panic or
// return anything but a *FormatError, and whatever it accepts must come out
// of Copy through a Writer byte for byte (the Reader accepts only canonical
// NARs). Seeds are in testdata/fuzz/FuzzReader.
func FuzzReader(f *testing.F) {
	f.Add(newNAR().str("(", "type", "directory").entry("a", "x").str(")").bytes())
	f.Fuzz(func(t *testing.T, in []byte) {
		r := nar.NewReader(bytes.NewReader(in))
		var out bytes.Buffer
		err := nar.Copy(nar.NewWriter(&out), r)
		if err != nil {
			var fe *nar.FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("error %v (%T) is not a *nar.FormatError", err, err)
			}
			if fe.Offset < 0 || fe.Offset > int64(len(in)) {
				t.Fatalf("error offset %d outside the %d input bytes", fe.Offset, len(in))
			}
			return
		}
		if n := r.Offset(); !bytes.Equal(out.Bytes(), in[:n]) {
			t.Fatalf("accepted %d bytes, but Copy wrote %d different ones", n, out.Len())
		}
	})
}

// FuzzRoundTrip builds a tree from a script with the Writer (one node a
// line: "d name" opens a folder, "u" leaves it, "f name data", "x name
// data" for an executable, "l name target"); whatever the Writer accepts
// the Reader must read back identically.
func FuzzRoundTrip(f *testing.F) {
	f.Add("d\nf a hello\nx b #!/bin/sh\nd c\nl d ../a\nu\nf e \n")
	f.Add("f\x00 root file")
	f.Add("d\nd a\nd b\nu\nu\nf z zz")
	f.Fuzz(func(t *testing.T, script string) {
		type node struct {
			h    nar.Header
			data string
		}
		var nodes []node
		var stack []string
		for i, line := range strings.Split(script, "\n") {
			if line == "" {
				continue
			}
			op := line[:1]
			_, rest, _ := strings.Cut(line[1:], " ")
			name, arg, _ := strings.Cut(rest, " ")
			parent := "/"
			if len(stack) > 0 {
				parent = stack[len(stack)-1]
			}
			p := "/"
			if i > 0 {
				p = strings.TrimSuffix(parent, "/") + "/" + name
			}
			switch op {
			case "d":
				nodes = append(nodes, node{h: nar.Header{Path: p, Type: nar.TypeDirectory}})
				stack = append(stack, p)
			case "u":
				if len(stack) > 1 {
					stack = stack[:len(stack)-1]
				}
			case "f", "x":
				nodes = append(nodes, node{h: nar.Header{Path: p, Type: nar.TypeRegular, Size: int64(len(arg)), Executable: op == "x"}, data: arg})
			case "l":
				nodes = append(nodes, node{h: nar.Header{Path: p, Type: nar.TypeSymlink, LinkTarget: arg}})
			}
		}
		var buf bytes.Buffer
		w := nar.NewWriter(&buf)
		for _, n := range nodes {
			if err := w.WriteHeader(&n.h); err != nil {
				return
			}
			if _, err := io.WriteString(w, n.data); err != nil {
				return
			}
		}
		if err := w.Close(); err != nil {
			return
		}
		r := nar.NewReader(bytes.NewReader(buf.Bytes()))
		for i := 0; ; i++ {
			h, err := r.Next()
			if err == io.EOF {
				if i != len(nodes) {
					t.Fatalf("read %d nodes, wrote %d", i, len(nodes))
				}
				break
			}
			if err != nil {
				t.Fatalf("Reader refused what the Writer wrote: %v", err)
			}
			want := nodes[i].h
			if want.Path == "" {
				want.Path = "/"
			}
			if *h != want {
				t.Fatalf("node %d: read %+v, wrote %+v", i, *h, want)
			}
			data, err := io.ReadAll(r)
			if err != nil || string(data) != nodes[i].data {
				t.Fatalf("node %d: contents %q (%v), wrote %q", i, data, err, nodes[i].data)
			}
		}
		if r.Offset() != int64(buf.Len()) {
			t.Fatalf("Reader stopped at %d of %d bytes", r.Offset(), buf.Len())
		}
	})
}
