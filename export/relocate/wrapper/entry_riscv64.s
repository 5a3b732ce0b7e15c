//go:build linux

#include "textflag.h"

// entry: see entry.go. CLONE_NEWUSER|CLONE_NEWNS is 0x10020000, AT_FDCWD -100.

TEXT ·entry(SB), NOSPLIT|NOFRAME, $0
	MOV	$0, A0 // sched_getaffinity(0, 128, &entryMask)
	MOV	$128, A1
	MOV	$·entryMask(SB), A2
	MOV	$123, A7
	ECALL
	MOV	A0, ·entryMaskLen(SB)
	MOV	·entryMask(SB), A0
	BEQZ	A0, ids
	NEG	A0, A1 // the lowest CPU of the first word: x & -x
	AND	A1, A0, A0
	MOV	A0, ·entryOneCPU(SB)
	MOV	$0, A0 // sched_setaffinity(0, 8, &entryOneCPU)
	MOV	$8, A1
	MOV	$·entryOneCPU(SB), A2
	MOV	$122, A7
	ECALL
ids:
	MOV	$175, A7 // geteuid
	ECALL
	MOV	A0, ·entryEUID(SB)
	MOV	$177, A7 // getegid
	ECALL
	MOV	A0, ·entryEGID(SB)
	MOV	$1, T0
	MOV	T0, ·entryRan(SB)
	MOV	$-100, A0 // faccessat(AT_FDCWD, program, F_OK)
	MOV	$·block+16(SB), A1
	MOV	$0, A2
	MOV	$48, A7
	ECALL
	BNEZ	A0, unshare
	MOV	$1, T0
	MOV	T0, ·entryDirect(SB)
	JMP	_rt0_riscv64_linux(SB)
unshare:
	MOV	$0x10020000, A0 // unshare(CLONE_NEWUSER|CLONE_NEWNS)
	MOV	$97, A7
	ECALL
	MOV	A0, ·entryUnshare(SB)
	JMP	_rt0_riscv64_linux(SB)
