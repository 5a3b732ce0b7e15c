//go:build linux

#include "textflag.h"

// entry: see entry.go.

// Go's code takes R0 for zero; the runtime's entry zeroes it again.
TEXT ·entry(SB), NOSPLIT|NOFRAME, $0
	XOR	R0, R0
	MOVD	R1, ·entrySP(SB)
	BL	·early(SB)
	BR	_rt0_ppc64le_linux(SB)
