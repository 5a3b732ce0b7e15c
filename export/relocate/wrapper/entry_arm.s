//go:build linux

#include "textflag.h"

// entry: see entry.go.

TEXT ·entry(SB), NOSPLIT|NOFRAME, $0
	MOVW	R13, ·entrySP(SB)
	BL	·early(SB)
	B	_rt0_arm_linux(SB)
