//go:build linux

#include "textflag.h"

// entry: see entry.go. CLONE_NEWUSER|CLONE_NEWNS is 0x10020000, AT_FDCWD -100.

TEXT ·entry(SB), NOSPLIT|NOFRAME, $0
	MOVQ	$204, AX // sched_getaffinity(0, 128, &entryMask)
	MOVQ	$0, DI
	MOVQ	$128, SI
	LEAQ	·entryMask(SB), DX
	SYSCALL
	MOVQ	AX, ·entryMaskLen(SB)
	MOVQ	·entryMask(SB), AX
	TESTQ	AX, AX
	JEQ	ids
	MOVQ	AX, BX // the lowest CPU of the first word: x & -x
	NEGQ	BX
	ANDQ	BX, AX
	MOVQ	AX, ·entryOneCPU(SB)
	MOVQ	$203, AX // sched_setaffinity(0, 8, &entryOneCPU)
	MOVQ	$0, DI
	MOVQ	$8, SI
	LEAQ	·entryOneCPU(SB), DX
	SYSCALL
ids:
	MOVQ	$107, AX // geteuid
	SYSCALL
	MOVQ	AX, ·entryEUID(SB)
	MOVQ	$108, AX // getegid
	SYSCALL
	MOVQ	AX, ·entryEGID(SB)
	MOVQ	$1, ·entryRan(SB)
	MOVQ	$269, AX // faccessat(AT_FDCWD, program, F_OK)
	MOVQ	$-100, DI
	LEAQ	·block+16(SB), SI
	MOVQ	$0, DX
	SYSCALL
	TESTQ	AX, AX
	JNE	unshare
	MOVQ	$1, ·entryDirect(SB)
	JMP	_rt0_amd64_linux(SB)
unshare:
	MOVQ	$272, AX // unshare(CLONE_NEWUSER|CLONE_NEWNS)
	MOVQ	$0x10020000, DI
	SYSCALL
	MOVQ	AX, ·entryUnshare(SB)
	JMP	_rt0_amd64_linux(SB)
