//go:build linux

#include "textflag.h"

// entry: see entry.go. CLONE_NEWUSER|CLONE_NEWNS is 0x10020000, AT_FDCWD -100.

// The system call number goes in R0, which Go's code takes for zero:
// the runtime's entry zeroes it again. A failed call sets CR0's summary
// overflow bit and returns the errno, positive, in R3.
TEXT ·entry(SB), NOSPLIT|NOFRAME, $0
	MOVD	$0, R3 // sched_getaffinity(0, 128, &entryMask)
	MOVD	$128, R4
	MOVD	$·entryMask(SB), R5
	SYSCALL	$223
	MOVD	R3, ·entryMaskLen(SB)
	MOVD	·entryMask(SB), R3
	CMP	R3, $0
	BEQ	ids
	NEG	R3, R4 // the lowest CPU of the first word: x & -x
	AND	R4, R3, R3
	MOVD	R3, ·entryOneCPU(SB)
	MOVD	$0, R3 // sched_setaffinity(0, 8, &entryOneCPU)
	MOVD	$8, R4
	MOVD	$·entryOneCPU(SB), R5
	SYSCALL	$222
ids:
	SYSCALL	$49 // geteuid
	MOVD	R3, ·entryEUID(SB)
	SYSCALL	$50 // getegid
	MOVD	R3, ·entryEGID(SB)
	MOVD	$1, R3
	MOVD	R3, ·entryRan(SB)
	MOVD	$-100, R3 // faccessat(AT_FDCWD, program, F_OK)
	MOVD	$·block+16(SB), R4
	MOVD	$0, R5
	SYSCALL	$298
	BVS	unshare
	MOVD	$1, R3
	MOVD	R3, ·entryDirect(SB)
	BR	_rt0_ppc64le_linux(SB)
unshare:
	MOVD	$0x10020000, R3 // unshare(CLONE_NEWUSER|CLONE_NEWNS)
	SYSCALL	$282
	MOVD	R3, ·entryUnshare(SB)
	BR	_rt0_ppc64le_linux(SB)
