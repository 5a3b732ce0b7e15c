//go:build linux

#include "textflag.h"

// entry: see entry.go. CLONE_NEWUSER|CLONE_NEWNS is 0x10020000, AT_FDCWD -100.

TEXT ·entry(SB), NOSPLIT|NOFRAME, $0
	MOVW	$0, R0 // sched_getaffinity(0, 128, &entryMask)
	MOVW	$128, R1
	MOVW	$·entryMask(SB), R2
	MOVW	$242, R7
	SWI	$0
	MOVW	R0, ·entryMaskLen(SB)
	MOVW	·entryMask(SB), R0
	CMP	$0, R0
	BEQ	ids
	RSB	$0, R0, R1 // the lowest CPU of the first word: x & -x
	AND	R1, R0
	MOVW	R0, ·entryOneCPU(SB)
	MOVW	$0, R0 // sched_setaffinity(0, 4, &entryOneCPU)
	MOVW	$4, R1
	MOVW	$·entryOneCPU(SB), R2
	MOVW	$241, R7
	SWI	$0
ids:
	MOVW	$201, R7 // geteuid32
	SWI	$0
	MOVW	R0, ·entryEUID(SB)
	MOVW	$202, R7 // getegid32
	SWI	$0
	MOVW	R0, ·entryEGID(SB)
	MOVW	$1, R0
	MOVW	R0, ·entryRan(SB)
	MOVW	$-100, R0 // faccessat(AT_FDCWD, program, F_OK)
	MOVW	$·block+16(SB), R1
	MOVW	$0, R2
	MOVW	$334, R7
	SWI	$0
	CMP	$0, R0
	BNE	unshare
	MOVW	$1, R0
	MOVW	R0, ·entryDirect(SB)
	B	_rt0_arm_linux(SB)
unshare:
	MOVW	$0x10020000, R0 // unshare(CLONE_NEWUSER|CLONE_NEWNS)
	MOVW	$337, R7
	SWI	$0
	MOVW	R0, ·entryUnshare(SB)
	B	_rt0_arm_linux(SB)
