//go:build linux

package main

import (
	"syscall"
	"unsafe"

	"github.com/storepack/storepack/export/relocate/area"
)

// The wrapper's entry point is entry (entry_GOARCH.s, the linker's -E
// flag), which runs before the Go runtime, while the process has one
// thread: the kernel gives a new user namespace to a single-threaded
// process alone, and the Go runtime starts threads before any of the
// program's code runs. It
//
//  1. keeps the process's CPU affinity mask and, when its first word
//     has a CPU, runs the process on the lowest one: the runtime then
//     sizes itself for one CPU (GOMAXPROCS=1) and starts fewer threads,
//     which costs less than it saves; execProgram gives the mask back;
//  2. keeps the effective uid and gid (a new user namespace shows them
//     as the overflow ids until its maps are written);
//  3. tests whether the program named in block exists at its store path
//     (faccessat): then it makes no namespace;
//  4. otherwise unshares a new user and mount namespace and keeps the
//     result;
//
// and jumps to the runtime's own entry point. main reads what it left in
// the variables below. Each architecture's file makes the same system
// calls with that architecture's numbers and conventions; its registers
// are the kernel's, as the runtime's entry expects them.
func entry()

// block is the wrapper's block of package area: what it runs, filled in
// by storepack in each wrapped program's copy of the wrapper.
var block = [area.Size]byte{'s', 't', 'o', 'r', 'e', 'p', 'a', 'c', 'k', '-', 'r', 'e', 'l', 'o', 'c', '2'}

// Set by entry before the runtime starts.
var (
	// entryRan is 1 once entry ran.
	entryRan uintptr
	// entryDirect is 1 when the program exists at its store path.
	entryDirect uintptr
	// entryUnshare is unshare's result: 0, or its errno (negated on
	// most architectures).
	entryUnshare uintptr
	// entryEUID and entryEGID are the effective uid and gid.
	entryEUID, entryEGID uintptr
	// entryMask is the CPU affinity mask the process started with and
	// entryMaskLen sched_getaffinity's result, its length in bytes.
	entryMask    [16]uint64
	entryMaskLen uintptr
	// entryOneCPU is the mask of one CPU the wrapper runs on (the lowest
	// of the first word of entryMask), or 0 when it kept its mask.
	entryOneCPU uintptr
)

// restoreAffinity gives the process back the CPUs entry took from it.
func restoreAffinity() {
	if entryOneCPU == 0 {
		return
	}
	_, _, e := syscall.RawSyscall(syscall.SYS_SCHED_SETAFFINITY, 0, entryMaskLen, uintptr(unsafe.Pointer(&entryMask)))
	if e == 0 {
		return
	}
	// The CPUs allowed changed meanwhile (a cpuset): ask for every CPU,
	// which the kernel narrows to those allowed.
	var all [16]uint64
	for i := range all {
		all[i] = ^uint64(0)
	}
	syscall.RawSyscall(syscall.SYS_SCHED_SETAFFINITY, 0, unsafe.Sizeof(all), uintptr(unsafe.Pointer(&all)))
}

// unshareErrno is entry's unshare error, or 0.
func unshareErrno() syscall.Errno {
	e := int(int32(entryUnshare))
	if e < 0 {
		e = -e
	}
	return syscall.Errno(e)
}
