package spec

import (
	"runtime"
	"slices"
)

// Systems are the Guix/Nix system names an export may target, the Linux
// ones that have an OCI architecture.
var Systems = []string{
	"x86_64-linux",
	"i686-linux",
	"aarch64-linux",
	"armhf-linux",
	"armv7l-linux",
	"mips64el-linux",
	"powerpc64le-linux",
	"riscv64-linux",
	"s390x-linux",
}

// goarchSystems maps Go's GOARCH to the system name of a Linux host.
var goarchSystems = map[string]string{
	"amd64":    "x86_64-linux",
	"386":      "i686-linux",
	"arm64":    "aarch64-linux",
	"arm":      "armhf-linux",
	"mips64le": "mips64el-linux",
	"ppc64le":  "powerpc64le-linux",
	"riscv64":  "riscv64-linux",
	"s390x":    "s390x-linux",
}

// KnownSystem reports whether name is in Systems.
func KnownSystem(name string) bool { return slices.Contains(Systems, name) }

// HostSystem is the system name of the machine storepack runs on, from
// runtime.GOARCH, and whether it is one of Systems.
func HostSystem() (string, bool) {
	s, ok := goarchSystems[runtime.GOARCH]
	if !ok {
		return runtime.GOARCH + "-linux", false
	}
	return s, true
}
