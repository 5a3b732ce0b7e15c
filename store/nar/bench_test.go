package nar_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/storepack/storepack/store/nar"
)

// benchTree writes a tree shaped like a toolchain: many small files, some
// large ones, folders a few levels deep, some symlinks (about 2,000 files
// and 40 MB), and returns its path and NAR size.
func benchTree(b *testing.B) (string, int64) {
	b.Helper()
	dir := filepath.Join(b.TempDir(), "tree")
	data := bytes.Repeat([]byte("storepack benchmark data\n"), 1<<16)
	for i := range 2000 {
		p := filepath.Join(dir, fmt.Sprintf("pkg%02d", i%40), fmt.Sprintf("sub%d", i%7), fmt.Sprintf("file%04d.go", i))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			b.Fatal(err)
		}
		size := 200 + (i*7919)%12000 // mostly small
		if i%100 == 0 {
			size = 1<<20 + i // a few large
		}
		if err := os.WriteFile(p, data[:size], 0o644); err != nil {
			b.Fatal(err)
		}
		if i%50 == 0 {
			if err := os.Symlink(filepath.Base(p), p+".link"); err != nil {
				b.Fatal(err)
			}
		}
	}
	_, n, err := nar.Hash(dir)
	if err != nil {
		b.Fatal(err)
	}
	return dir, n
}

// BenchmarkDump dumps the tree into a file, as `storepack dump > F` does.
func BenchmarkDump(b *testing.B) {
	dir, size := benchTree(b)
	f, err := os.Create(filepath.Join(b.TempDir(), "out.nar"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	b.SetBytes(size)
	b.ResetTimer()
	for b.Loop() {
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			b.Fatal(err)
		}
		if err := nar.Dump(f, dir); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkHash hashes the tree's NAR.
func BenchmarkHash(b *testing.B) {
	dir, size := benchTree(b)
	b.SetBytes(size)
	b.ResetTimer()
	for b.Loop() {
		if _, _, err := nar.Hash(dir); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRead reads the tree's NAR with the Reader, contents included.
func BenchmarkRead(b *testing.B) {
	dir, size := benchTree(b)
	var buf bytes.Buffer
	if err := nar.Dump(&buf, dir); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(size)
	b.ResetTimer()
	for b.Loop() {
		r := nar.NewReader(bufio.NewReaderSize(bytes.NewReader(buf.Bytes()), 64<<10))
		if _, err := readAll(r); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRestore restores the tree's NAR into a new folder.
func BenchmarkRestore(b *testing.B) {
	dir, size := benchTree(b)
	var buf bytes.Buffer
	if err := nar.Dump(&buf, dir); err != nil {
		b.Fatal(err)
	}
	tmp := b.TempDir()
	b.SetBytes(size)
	b.ResetTimer()
	i := 0
	for b.Loop() {
		out := filepath.Join(tmp, fmt.Sprint(i))
		i++
		if err := nar.Restore(bytes.NewReader(buf.Bytes()), out); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		filepath.Walk(out, func(p string, fi os.FileInfo, err error) error {
			if err == nil && fi.IsDir() {
				os.Chmod(p, 0o755)
			}
			return nil
		})
		os.RemoveAll(out)
		b.StartTimer()
	}
}
