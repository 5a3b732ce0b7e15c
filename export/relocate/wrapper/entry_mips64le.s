//go:build linux

#include "textflag.h"

// entry: see entry.go.

TEXT ·entry(SB), NOSPLIT|NOFRAME, $0
	// The static base register, which addresses the variables, as the
	// runtime's main sets it: the upper half of the PC.
	BGEZAL	R0, 1(PC)
	SRLV	$32, R31, RSB
	SLLV	$32, RSB
	MOVV	R29, ·entrySP(SB)
	JAL	·early(SB)
	JMP	_rt0_mips64le_linux(SB)
