//go:build linux

#include "textflag.h"

// entry: see entry.go. CLONE_NEWUSER|CLONE_NEWNS is 0x10020000, AT_FDCWD -100.

TEXT ·entry(SB), NOSPLIT|NOFRAME, $0
	MOVL	$242, AX // sched_getaffinity(0, 128, &entryMask)
	MOVL	$0, BX
	MOVL	$128, CX
	LEAL	·entryMask(SB), DX
	INT	$0x80
	MOVL	AX, ·entryMaskLen(SB)
	MOVL	·entryMask(SB), AX
	TESTL	AX, AX
	JEQ	ids
	MOVL	AX, BX // the lowest CPU of the first word: x & -x
	NEGL	BX
	ANDL	BX, AX
	MOVL	AX, ·entryOneCPU(SB)
	MOVL	$241, AX // sched_setaffinity(0, 4, &entryOneCPU)
	MOVL	$0, BX
	MOVL	$4, CX
	LEAL	·entryOneCPU(SB), DX
	INT	$0x80
ids:
	MOVL	$201, AX // geteuid32
	INT	$0x80
	MOVL	AX, ·entryEUID(SB)
	MOVL	$202, AX // getegid32
	INT	$0x80
	MOVL	AX, ·entryEGID(SB)
	MOVL	$1, ·entryRan(SB)
	MOVL	$307, AX // faccessat(AT_FDCWD, program, F_OK)
	MOVL	$-100, BX
	LEAL	·block+16(SB), CX
	MOVL	$0, DX
	INT	$0x80
	TESTL	AX, AX
	JNE	unshare
	MOVL	$1, ·entryDirect(SB)
	JMP	_rt0_386_linux(SB)
unshare:
	MOVL	$310, AX // unshare(CLONE_NEWUSER|CLONE_NEWNS)
	MOVL	$0x10020000, BX
	INT	$0x80
	MOVL	AX, ·entryUnshare(SB)
	JMP	_rt0_386_linux(SB)
