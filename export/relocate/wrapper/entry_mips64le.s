//go:build linux

#include "textflag.h"

// entry: see entry.go. CLONE_NEWUSER|CLONE_NEWNS is 0x10020000, AT_FDCWD -100.

// A failed call sets R7 and returns the errno, positive, in R2.
TEXT ·entry(SB), NOSPLIT|NOFRAME, $0
	// The static base register, which addresses the variables, as the
	// runtime's main sets it: the upper half of the PC.
	BGEZAL	R0, 1(PC)
	SRLV	$32, R31, RSB
	SLLV	$32, RSB
	MOVV	R0, R4 // sched_getaffinity(0, 128, &entryMask)
	MOVV	$128, R5
	MOVV	$·entryMask(SB), R6
	MOVV	$5196, R2
	SYSCALL
	MOVV	R2, ·entryMaskLen(SB)
	MOVV	·entryMask(SB), R4
	BEQ	R4, ids
	SUBVU	R4, R0, R5 // the lowest CPU of the first word: x & -x
	AND	R5, R4
	MOVV	R4, ·entryOneCPU(SB)
	MOVV	R0, R4 // sched_setaffinity(0, 8, &entryOneCPU)
	MOVV	$8, R5
	MOVV	$·entryOneCPU(SB), R6
	MOVV	$5195, R2
	SYSCALL
ids:
	MOVV	$5105, R2 // geteuid
	SYSCALL
	MOVV	R2, ·entryEUID(SB)
	MOVV	$5106, R2 // getegid
	SYSCALL
	MOVV	R2, ·entryEGID(SB)
	MOVV	$1, R2
	MOVV	R2, ·entryRan(SB)
	MOVV	$-100, R4 // faccessat(AT_FDCWD, program, F_OK)
	MOVV	$·block+16(SB), R5
	MOVV	R0, R6
	MOVV	$5259, R2
	SYSCALL
	BNE	R7, unshare
	MOVV	$1, R2
	MOVV	R2, ·entryDirect(SB)
	JMP	_rt0_mips64le_linux(SB)
unshare:
	MOVV	$0x10020000, R4 // unshare(CLONE_NEWUSER|CLONE_NEWNS)
	MOVV	$5262, R2
	SYSCALL
	MOVV	R2, ·entryUnshare(SB)
	JMP	_rt0_mips64le_linux(SB)
