//go:build linux

#include "textflag.h"

// entry: see entry.go. CLONE_NEWUSER|CLONE_NEWNS is 0x10020000, AT_FDCWD -100.

TEXT ·entry(SB), NOSPLIT|NOFRAME, $0
	MOVD	$0, R0 // sched_getaffinity(0, 128, &entryMask)
	MOVD	$128, R1
	MOVD	$·entryMask(SB), R2
	MOVD	$123, R8
	SVC
	MOVD	R0, ·entryMaskLen(SB)
	MOVD	·entryMask(SB), R0
	CBZ	R0, ids
	NEG	R0, R1 // the lowest CPU of the first word: x & -x
	AND	R1, R0, R0
	MOVD	R0, ·entryOneCPU(SB)
	MOVD	$0, R0 // sched_setaffinity(0, 8, &entryOneCPU)
	MOVD	$8, R1
	MOVD	$·entryOneCPU(SB), R2
	MOVD	$122, R8
	SVC
ids:
	MOVD	$175, R8 // geteuid
	SVC
	MOVD	R0, ·entryEUID(SB)
	MOVD	$177, R8 // getegid
	SVC
	MOVD	R0, ·entryEGID(SB)
	MOVD	$1, R0
	MOVD	R0, ·entryRan(SB)
	MOVD	$-100, R0 // faccessat(AT_FDCWD, program, F_OK)
	MOVD	$·block+16(SB), R1
	MOVD	$0, R2
	MOVD	$48, R8
	SVC
	CBNZ	R0, unshare
	MOVD	$1, R0
	MOVD	R0, ·entryDirect(SB)
	JMP	_rt0_arm64_linux(SB)
unshare:
	MOVD	$0x10020000, R0 // unshare(CLONE_NEWUSER|CLONE_NEWNS)
	MOVD	$97, R8
	SVC
	MOVD	R0, ·entryUnshare(SB)
	JMP	_rt0_arm64_linux(SB)
