//go:build linux

#include "textflag.h"

// entry: see entry.go. CLONE_NEWUSER|CLONE_NEWNS is 0x10020000, AT_FDCWD -100.

TEXT ·entry(SB), NOSPLIT|NOFRAME, $0
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
