package nar

import (
	"bufio"
	"fmt"
	"os"
	"strings"
	"testing"
	"unsafe"
)

// TestChunkArena takes every buffer the arena holds and more: the arena's
// do not overlap and have chunkSize bytes, the rest come from the heap,
// and each given back is handed out again.
func TestChunkArena(t *testing.T) {
	var taken [][]byte
	defer func() {
		for _, b := range taken {
			putChunk(b)
		}
	}()
	inMem := 0
	seen := map[uintptr]bool{}
	for range arenaSize/chunkSize + 4 {
		b := getChunk()
		taken = append(taken, b)
		if len(b) != 0 || cap(b) != chunkSize {
			t.Fatalf("buffer of len %d, cap %d; want 0, %d", len(b), cap(b), chunkSize)
		}
		p := uintptr(unsafe.Pointer(unsafe.SliceData(b[:1])))
		if seen[p] {
			t.Fatalf("buffer at %#x handed out twice", p)
		}
		seen[p] = true
		if inArena(b) {
			inMem++
			if base := uintptr(unsafe.Pointer(unsafe.SliceData(arena.mem))); (p-base)%chunkSize != 0 {
				t.Fatalf("arena buffer at offset %d, not a multiple of %d", p-base, chunkSize)
			}
		}
	}
	if arena.mem == nil {
		t.Skip("mmap refused: every buffer is the heap's")
	}
	if uintptr(unsafe.Pointer(unsafe.SliceData(arena.mem)))%hugePage != 0 {
		t.Errorf("arena not at a %d-byte boundary", hugePage)
	}
	if want := arenaSize / chunkSize; inMem != want {
		t.Errorf("%d buffers from the arena, want %d", inMem, want)
	}
	// Give one arena buffer back: it is the next handed out.
	var back []byte
	for i, b := range taken {
		if inArena(b) {
			back = b
			taken = append(taken[:i], taken[i+1:]...)
			break
		}
	}
	putChunk(back)
	again := getChunk()
	taken = append(taken, again)
	if unsafe.SliceData(again[:1]) != unsafe.SliceData(back[:1]) {
		t.Errorf("a buffer given back to the arena was not handed out again")
	}
}

// TestChunkArenaHugePages checks that the arena is advised to be backed
// by transparent huge pages: its mapping's VmFlags in /proc/self/smaps
// hold "hg" (MADV_HUGEPAGE), whatever the system's default.
func TestChunkArenaHugePages(t *testing.T) {
	if _, err := os.Stat("/sys/kernel/mm/transparent_hugepage/enabled"); err != nil {
		t.Skip("this kernel has no transparent huge pages")
	}
	putChunk(getChunk())
	if arena.mem == nil {
		t.Skip("mmap refused: every buffer is the heap's")
	}
	base := uintptr(unsafe.Pointer(unsafe.SliceData(arena.mem)))
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		var lo, hi uintptr
		if n, _ := fmt.Sscanf(line, "%x-%x ", &lo, &hi); n == 2 {
			in = lo <= base && base < hi
			continue
		}
		if in {
			if flags, ok := strings.CutPrefix(line, "VmFlags:"); ok {
				if !strings.Contains(" "+flags+" ", " hg ") {
					t.Errorf("the arena's mapping is not advised huge pages: VmFlags:%s", flags)
				}
				return
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	t.Fatalf("no mapping of /proc/self/smaps holds the arena at %#x", base)
}
