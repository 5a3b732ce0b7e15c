//go:build linux

package main

import (
	"unsafe"

	"github.com/storepack/storepack/export/relocate/area"
)

// The wrapper's entry point is entry (entry_GOARCH.s, the linker's -E
// flag). It keeps the stack pointer the kernel gave the process (argc,
// argv and the environment are there), makes what the architecture's
// Go code takes for granted true (amd64: a thread pointer it can read
// g from; ppc64le: R0 zero; mips64le: the static base register), calls
// early and, when early returns, jumps to the Go runtime's own entry
// point with the kernel's stack as it was.
//
// early (early.go) does the wrapper's whole job before the Go runtime
// starts, while the process has one thread (the kernel gives a new user
// namespace to a single-threaded process alone) and without the
// runtime's start-up, which costs more than everything else the wrapper
// does: it execs the program, so the runtime never starts when all goes
// well. When a step fails it records which, with its errno and the path
// it concerns, and returns; then the runtime starts, and main explains
// the failure and exits.
func entry()

// block is the wrapper's block of package area: what it runs, filled in
// by storepack in each wrapped program's copy of the wrapper.
var block = [area.Size]byte{'s', 't', 'o', 'r', 'e', 'p', 'a', 'c', 'k', '-', 'r', 'e', 'l', 'o', 'c', '2'}

// Set by entry before early runs.
var (
	// entrySP is the stack pointer the process started with: argc,
	// then argv and the environment, NULL-terminated.
	entrySP unsafe.Pointer
	// entryTLS is what amd64's entry makes the thread pointer point
	// into: the word before it, where Go's code on amd64 reads g from,
	// is zero until the runtime makes its own.
	entryTLS [2]uintptr
)

// What early found, for main; set before the runtime starts.
var (
	// earlyRan is 1 once early ran.
	earlyRan uintptr
	// failedStep is the step that failed (a step constant), or 0.
	failedStep uintptr
	// failedErrno is the failed step's errno, or 0.
	failedErrno uintptr
	// failedPath is the path the failed step concerns, NUL-terminated.
	failedPath [pathMax]byte
)
