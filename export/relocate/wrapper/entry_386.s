//go:build linux

#include "textflag.h"

// entry: see entry.go.

TEXT ·entry(SB), NOSPLIT|NOFRAME, $0
	MOVL	SP, ·entrySP(SB)
	CALL	·early(SB)
	JMP	_rt0_386_linux(SB)
