//go:build linux

#include "textflag.h"

// entry: see entry.go.

// Go's code on amd64 reads g at the thread pointer less 8 when it
// enters from assembly: arch_prctl(ARCH_SET_FS, &entryTLS+8) makes that
// a zero word. The runtime sets its own thread pointer.
TEXT ·entry(SB), NOSPLIT|NOFRAME, $0
	MOVQ	SP, ·entrySP(SB)
	MOVQ	$158, AX
	MOVQ	$0x1002, DI
	LEAQ	·entryTLS+8(SB), SI
	SYSCALL
	CALL	·early(SB)
	JMP	_rt0_amd64_linux(SB)
