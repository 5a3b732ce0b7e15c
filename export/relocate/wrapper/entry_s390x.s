//go:build linux

#include "textflag.h"

// entry: see entry.go. CLONE_NEWUSER|CLONE_NEWNS is 0x10020000, AT_FDCWD -100.

TEXT ·entry(SB), NOSPLIT|NOFRAME, $0
	MOVD	$0, R2 // sched_getaffinity(0, 128, &entryMask)
	MOVD	$128, R3
	MOVD	$·entryMask(SB), R4
	MOVD	$240, R1
	SYSCALL
	MOVD	R2, ·entryMaskLen(SB)
	MOVD	·entryMask(SB), R2
	CMPBEQ	R2, $0, ids
	NEG	R2, R3 // the lowest CPU of the first word: x & -x
	AND	R3, R2
	MOVD	R2, ·entryOneCPU(SB)
	MOVD	$0, R2 // sched_setaffinity(0, 8, &entryOneCPU)
	MOVD	$8, R3
	MOVD	$·entryOneCPU(SB), R4
	MOVD	$239, R1
	SYSCALL
ids:
	MOVD	$201, R1 // geteuid
	SYSCALL
	MOVD	R2, ·entryEUID(SB)
	MOVD	$202, R1 // getegid
	SYSCALL
	MOVD	R2, ·entryEGID(SB)
	MOVD	$1, R2
	MOVD	R2, ·entryRan(SB)
	MOVD	$-100, R2 // faccessat(AT_FDCWD, program, F_OK)
	MOVD	$·block+16(SB), R3
	MOVD	$0, R4
	MOVD	$300, R1
	SYSCALL
	CMPBNE	R2, $0, unshare
	MOVD	$1, R2
	MOVD	R2, ·entryDirect(SB)
	BR	_rt0_s390x_linux(SB)
unshare:
	MOVD	$0x10020000, R2 // unshare(CLONE_NEWUSER|CLONE_NEWNS)
	MOVD	$303, R1
	SYSCALL
	MOVD	R2, ·entryUnshare(SB)
	BR	_rt0_s390x_linux(SB)
