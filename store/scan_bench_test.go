package store

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// benchInputs are kinds of bytes a store holds, 8 MiB each, and 5000
// candidates, 20 of them present in the data.
func benchInputs() (cands []Path, inputs map[string][]byte) {
	const size = 8 << 20
	r := rand.New(rand.NewPCG(5, 6))
	d := Dir("/gnu/store")
	for i := range 5000 {
		cands = append(cands, fakePath(d, fmt.Sprint(i), "pkg"))
	}
	binary := make([]byte, size)
	for i := range binary {
		binary[i] = byte(r.Uint32())
	}
	words := []string{"the", "store", "of", "a", "package", "build", "lib", "share", "include", "int", "return",
		"if", "else", "for", "while", "define", "static", "void", "char", "struct", "\n", "{", "}", ";", "=="}
	var text strings.Builder
	for text.Len() < size {
		if r.IntN(200) == 0 {
			text.WriteString(string(cands[r.IntN(20)]) + "/lib ")
			continue
		}
		text.WriteString(words[r.IntN(len(words))])
		text.WriteByte(' ')
	}
	var paths strings.Builder
	for paths.Len() < size {
		paths.WriteString(string(cands[r.IntN(len(cands))]))
		paths.WriteByte('\n')
	}
	run := make([]byte, size)
	for i := range run {
		run[i] = nix32Alphabet[r.IntN(32)]
	}
	return cands, map[string][]byte{
		"binary":       binary,
		"text":         []byte(text.String()[:size]),
		"store-paths":  []byte(paths.String()[:size]),
		"base32-worst": run,
	}
}

// BenchmarkScanner measures the Scanner's throughput on kinds of data, in
// the 64 KiB writes a NAR dump typically makes and in one write.
func BenchmarkScanner(b *testing.B) {
	cands, inputs := benchInputs()
	keys := newScanKeys(cands)
	for _, kind := range []string{"binary", "text", "store-paths", "base32-worst"} {
		data := inputs[kind]
		for _, chunk := range []int{64 << 10, len(data)} {
			b.Run(fmt.Sprintf("%s/write=%d", kind, chunk), func(b *testing.B) {
				b.SetBytes(int64(len(data)))
				for b.Loop() {
					s := newScanner(keys)
					for off := 0; off < len(data); off += chunk {
						s.Write(data[off:min(off+chunk, len(data))])
					}
					s.References()
				}
			})
		}
	}
}
