package nar_test

import (
	"bytes"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"

	"github.com/storepack/storepack/store/nar"
)

// Writing an export bundle of one item, as `nix-store --export` does, and
// reading it back with the strict BundleReader.
func ExampleBundleWriter() {
	dir, err := os.MkdirTemp("", "bundle-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	item := filepath.Join(dir, "hello")
	if err := os.WriteFile(item, []byte("hello\n"), 0o644); err != nil {
		log.Fatal(err)
	}

	var bundle bytes.Buffer
	bw := nar.NewBundleWriter(&bundle)
	e := &nar.BundleEntry{Path: "/nix/store/sz2s3swv2gdm7wr82ixmcyq98s8z6v13-hello"}
	if _, err := bw.WriteNAR(e, item, nil, nil); err != nil {
		log.Fatal(err)
	}
	if err := bw.WriteTrailer(e); err != nil {
		log.Fatal(err)
	}
	if err := bw.Close(); err != nil {
		log.Fatal(err)
	}

	br := nar.NewBundleReader(&bundle)
	for {
		r, err := br.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			log.Fatal(err)
		}
		h, err := r.Next()
		if err != nil {
			log.Fatal(err)
		}
		contents, err := io.ReadAll(r)
		if err != nil {
			log.Fatal(err)
		}
		entry, err := br.Entry()
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%s: a %s file of %d bytes: %q\n", entry.Path, h.Type, h.Size, contents)
	}
	// Output:
	// /nix/store/sz2s3swv2gdm7wr82ixmcyq98s8z6v13-hello: a regular file of 6 bytes: "hello\n"
}
