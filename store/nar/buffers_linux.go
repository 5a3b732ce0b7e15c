package nar

import (
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The read-ahead buffers live outside the Go heap, in memory mapped once
// per process and backed by transparent huge pages where the kernel
// allows it (madvise). Every 4 KiB page of a fresh buffer otherwise costs
// a page fault as the first read fills it, a thousand of them for the
// 4 MiB a stream may hold, which on a virtual machine was a tenth of the
// CPU time of hashing a 270 MB item; a huge page is one fault for 2 MiB.
// Buffers on the heap also made the garbage collector run for memory that
// is never garbage.
const (
	hugePage = 2 << 20
	// arenaSize bounds the mapped buffers: all a stream may hold (its
	// own and the shared ones). Beyond it, buffers come from the heap.
	arenaSize = (ownChunks + sharedChunks) * chunkSize
)

// BufferArena is the most memory the read-ahead buffers take outside the
// Go heap, in one mapping for the process. A program that holds its heap
// near a limit (debug.SetMemoryLimit) takes it out of that limit: the
// runtime does not count it.
const BufferArena = arenaSize

var arena struct {
	once sync.Once
	mem  []byte // arenaSize bytes at a huge page boundary, nil if unmapped
	mu   sync.Mutex
	used int      // bytes of mem handed out once
	free [][]byte // buffers of mem given back
}

// heapChunks keeps the heap buffers of finished streams for the next one.
var heapChunks = sync.Pool{New: func() any { b := make([]byte, 0, chunkSize); return &b }}

// mapArena reserves the arena; the kernel gives it pages as they are
// first written. Without it (mmap refused), every buffer is the heap's.
func mapArena() {
	m, err := unix.Mmap(-1, 0, arenaSize+hugePage, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_NORESERVE)
	if err != nil {
		return
	}
	skip := (hugePage - int(uintptr(unsafe.Pointer(unsafe.SliceData(m)))%hugePage)) % hugePage
	mem := m[skip : skip+arenaSize : skip+arenaSize]
	// Kernels without transparent huge pages refuse the advice; the
	// arena then has small pages, which is no worse than the heap.
	_ = unix.Madvise(mem, unix.MADV_HUGEPAGE)
	arena.mem = mem
}

// getChunk returns an empty buffer of chunkSize bytes' capacity.
func getChunk() []byte {
	arena.once.Do(mapArena)
	arena.mu.Lock()
	if n := len(arena.free); n > 0 {
		b := arena.free[n-1]
		arena.free = arena.free[:n-1]
		arena.mu.Unlock()
		return b[:0]
	}
	if arena.used+chunkSize <= len(arena.mem) {
		b := arena.mem[arena.used : arena.used : arena.used+chunkSize]
		arena.used += chunkSize
		arena.mu.Unlock()
		return b
	}
	arena.mu.Unlock()
	return (*heapChunks.Get().(*[]byte))[:0]
}

// putChunk gives back a buffer of getChunk's for another stream.
func putChunk(b []byte) {
	if inArena(b) {
		arena.mu.Lock()
		arena.free = append(arena.free, b)
		arena.mu.Unlock()
		return
	}
	putHeapChunk(b)
}

// putHeapChunk keeps b for another stream; apart from putChunk so that
// only heap buffers cost the allocation of the pointer Put takes.
func putHeapChunk(b []byte) { heapChunks.Put(&b) }

func inArena(b []byte) bool {
	if arena.mem == nil || cap(b) == 0 {
		return false
	}
	p := uintptr(unsafe.Pointer(unsafe.SliceData(b[:1])))
	base := uintptr(unsafe.Pointer(unsafe.SliceData(arena.mem)))
	return p >= base && p < base+uintptr(len(arena.mem))
}
