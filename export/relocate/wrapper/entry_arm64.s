//go:build linux

#include "textflag.h"

// entry: see entry.go.

TEXT ·entry(SB), NOSPLIT|NOFRAME, $0
	MOVD	RSP, R0
	MOVD	R0, ·entrySP(SB)
	BL	·early(SB)
	JMP	_rt0_arm64_linux(SB)
