//go:build linux

#include "textflag.h"

// entry: see entry.go.

TEXT ·entry(SB), NOSPLIT|NOFRAME, $0
	MOV	X2, ·entrySP(SB)
	CALL	·early(SB)
	JMP	_rt0_riscv64_linux(SB)
