//go:build linux

package main

import (
	"syscall"

	"github.com/storepack/storepack/export/relocate/area"
)

// The wrapper's entry point is entry (entry_GOARCH.s, the linker's -E
// flag), which runs before the Go runtime, while the process has one
// thread: the kernel gives a new user namespace to a single-threaded
// process alone, and the Go runtime starts threads before any of the
// program's code runs. It
//
//  1. keeps the effective uid and gid (a new user namespace shows them
//     as the overflow ids until its maps are written);
//  2. tests whether the program named in block exists at its store path
//     (faccessat): then it makes no namespace;
//  3. otherwise unshares a new user and mount namespace and keeps the
//     result;
//
// and jumps to the runtime's own entry point. main reads what it left in
// the variables below. Each architecture's file makes the same four
// system calls with that architecture's numbers and conventions; its
// registers are the kernel's, as the runtime's entry expects them.
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
)

// unshareErrno is entry's unshare error, or 0.
func unshareErrno() syscall.Errno {
	e := int(int32(entryUnshare))
	if e < 0 {
		e = -e
	}
	return syscall.Errno(e)
}
