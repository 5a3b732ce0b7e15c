//go:build linux && !386 && !arm

package main

import "syscall"

const (
	sysGeteuid = syscall.SYS_GETEUID
	sysGetegid = syscall.SYS_GETEGID
)
