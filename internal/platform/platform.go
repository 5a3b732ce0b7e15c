// Package platform maps Guix and Nix system names (x86_64-linux,
// armhf-linux, ...) to image platforms (amd64/linux, arm/linux/v7): the one
// table of them, shared by the spec checks and the image plans.
package platform

import (
	"fmt"
	"runtime"
	"slices"
	"strings"
)

// Platform is an image platform: the OCI architecture, OS and variant.
type Platform struct {
	Architecture string `json:"architecture"`
	OS           string `json:"os"`
	Variant      string `json:"variant,omitempty"`
}

// architectures maps the CPU part of Guix and Nix system names to image
// architectures and variants (REFERENCE: Guix's table, plus Nix's names).
var architectures = map[string]Platform{
	"x86_64":      {Architecture: "amd64"},
	"i686":        {Architecture: "386"},
	"aarch64":     {Architecture: "arm64"},
	"armhf":       {Architecture: "arm", Variant: "v7"}, // Guix
	"arm":         {Architecture: "arm", Variant: "v7"},
	"armv7l":      {Architecture: "arm", Variant: "v7"}, // Nix
	"armv6l":      {Architecture: "arm", Variant: "v6"}, // Nix
	"mips64el":    {Architecture: "mips64le"},
	"powerpc64le": {Architecture: "ppc64le"},
	"riscv64":     {Architecture: "riscv64"},
	"s390x":       {Architecture: "s390x"},
}

// kernels maps the kernel part of system names to image operating systems.
var kernels = map[string]string{"linux": "linux"}

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

// Lookup maps a system name such as x86_64-linux to its image platform.
// Unknown CPUs and kernels are errors listing the known systems.
func Lookup(system string) (Platform, error) {
	cpu, kernel, ok := strings.Cut(system, "-")
	if !ok {
		return Platform{}, fmt.Errorf("system %q: not <cpu>-<kernel> (known: %s)", system, strings.Join(Systems(), ", "))
	}
	p, okCPU := architectures[cpu]
	osName, okOS := kernels[kernel]
	if !okCPU || !okOS {
		return Platform{}, fmt.Errorf("system %q has no image architecture (known: %s)", system, strings.Join(Systems(), ", "))
	}
	p.OS = osName
	return p, nil
}

// Known reports whether Lookup knows system.
func Known(system string) bool {
	_, err := Lookup(system)
	return err == nil
}

// Systems lists the system names Lookup knows, sorted.
func Systems() []string {
	var out []string
	for cpu := range architectures {
		for kernel := range kernels {
			out = append(out, cpu+"-"+kernel)
		}
	}
	slices.Sort(out)
	return out
}

// Host is the system name of the machine storepack runs on, from
// runtime.GOARCH, and whether Lookup knows it.
func Host() (string, bool) {
	s, ok := goarchSystems[runtime.GOARCH]
	if !ok {
		return runtime.GOARCH + "-linux", false
	}
	return s, true
}

// TagSuffix is what a tag gets for this platform in multi-system exports:
// the architecture and variant, e.g. amd64, arm64, armv7.
func (p Platform) TagSuffix() string { return p.Architecture + p.Variant }

// packageArches maps image architectures and variants to the
// architecture names of Debian and RPM packages.
var packageArches = map[string]struct{ deb, rpm string }{
	"amd64":    {"amd64", "x86_64"},
	"386":      {"i386", "i686"},
	"arm64":    {"arm64", "aarch64"},
	"armv7":    {"armhf", "armv7hl"},
	"armv6":    {"armel", "armv6hl"},
	"mips64le": {"mips64el", "mips64el"},
	"ppc64le":  {"ppc64el", "ppc64le"},
	"riscv64":  {"riscv64", "riscv64"},
	"s390x":    {"s390x", "s390x"},
}

// Debian is the platform's architecture as Debian packages name it
// (amd64, arm64, i386, armhf, ...); "" when it has none.
func (p Platform) Debian() string { return packageArches[p.TagSuffix()].deb }

// RPM is the platform's architecture as RPM packages name it (x86_64,
// aarch64, i686, armv7hl, ...); "" when it has none.
func (p Platform) RPM() string { return packageArches[p.TagSuffix()].rpm }
