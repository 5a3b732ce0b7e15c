//go:build linux && (386 || arm)

package main

import "syscall"

// The 32-bit ids' calls (the plain ones give 16-bit ids).
const (
	sysGeteuid = syscall.SYS_GETEUID32
	sysGetegid = syscall.SYS_GETEGID32
)
