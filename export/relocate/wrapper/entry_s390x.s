//go:build linux

#include "textflag.h"

// entry: see entry.go.

TEXT ·entry(SB), NOSPLIT|NOFRAME, $0
	MOVD	R15, ·entrySP(SB)
	BL	·early(SB)
	BR	_rt0_s390x_linux(SB)
