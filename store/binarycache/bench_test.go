package binarycache

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/storepack/storepack/store/nar"
)

// BenchmarkWrite writes one 16 MiB item (half random bytes, half text, so
// that compressors have work of both kinds) into a new cache, per
// compression. Bytes per second are the NAR's; B/op shows that memory does
// not follow the item's size.
func BenchmarkWrite(b *testing.B) {
	const size = 16 << 20
	dir := b.TempDir()
	file := filepath.Join(dir, "big")
	data := make([]byte, size)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < size/2; i += 8 {
		v := rng.Uint64()
		for j := range 8 {
			data[i+j] = byte(v >> (8 * j))
		}
	}
	for i := size / 2; i < size; i++ {
		data[i] = "storepack binary cache benchmark text\n"[i%38]
	}
	if err := os.WriteFile(file, data, 0o644); err != nil {
		b.Fatal(err)
	}
	h, n, err := nar.Hash(file)
	if err != nil {
		b.Fatal(err)
	}
	item := Item{Path: testPath(testStore, "big", "big"), NarHash: h, NarSize: n, FSPath: file}
	key := testKey(b, "bench-1")
	for _, comp := range writeCompressions() {
		b.Run(comp, func(b *testing.B) {
			b.SetBytes(n)
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				cache := filepath.Join(b.TempDir(), fmt.Sprint(i))
				if _, err := Write(cache, []Item{item}, Options{StoreDir: testStore, Compression: comp, Key: key}); err != nil {
					b.Fatal(err)
				}
				os.RemoveAll(cache)
			}
		})
	}
}
