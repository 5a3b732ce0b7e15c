// Package relocate makes the programs of a relocatable pack (guix pack
// -R): each is replaced by a copy of a small static wrapper whose block
// (package area) names the real program's store path and the store
// folder. Run
// from wherever the pack was unpacked, by any user, the wrapper enters an
// unprivileged user and mount namespace in which the pack's store is at
// the store folder and execs the real program there (the program
// export/relocate/wrapper; docs/relocatable.md).
//
// A writer wraps a program of its tree with
//
//	w, err := relocate.ForSystem("x86_64-linux")  // once per system
//	b, err := relocate.Wrap(w, "/gnu/store", "/gnu/store/...-hello-2.12/bin/hello")
//
// and writes b, mode 0555, where the program's entry was (a profile's
// bin/hello), the real program staying at its store path. The bytes
// depend only on the wrapper and the two paths.
//
// The wrappers are built for every architecture of
// internal/platform with BuildCommand: CGO_ENABLED=0, -trimpath,
// -buildvcs=false, -ldflags='-s -w -buildid= -E=main.entry' (the
// wrapper's own entry point, which does its whole job before the Go
// runtime starts) and the architecture levels fixed (GOAMD64=v1,
// GOARM=6, which runs on armv6l and armv7, ...). They
// are committed gzipped in bin/ and embedded; `go generate
// ./export/relocate` rebuilds them. The bytes depend on the Go toolchain:
// the committed ones were built by the toolchain bin/TOOLCHAIN names
// (go1.26.8), and TestWrappersReproducible rebuilds every wrapper with
// the running toolchain and compares bytes, failing under another one.
// The wrapper uses the standard library and package area alone, so the
// module's dependencies do not change its bytes.
package relocate

//go:generate go run ./build

import (
	"bytes"
	"compress/gzip"
	"embed"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"sync"

	"github.com/storepack/storepack/export/relocate/area"
	"github.com/storepack/storepack/internal/platform"
	"github.com/storepack/storepack/store"
)

// WrapperPackage is the import path of the wrapper program.
const WrapperPackage = "github.com/storepack/storepack/export/relocate/wrapper"

// goarches are the architectures with a wrapper: those of
// internal/platform's systems.
var goarches = []string{"386", "amd64", "arm", "arm64", "mips64le", "ppc64le", "riscv64", "s390x"}

// levels fixes the architecture levels of the builds, whatever the
// environment says.
var levels = []string{
	"GOAMD64=v1", "GO386=sse2", "GOARM=6", "GOARM64=v8.0", "GOPPC64=power8",
	"GORISCV64=rva20u64", "GOMIPS64=hardfloat", "GOEXPERIMENT=",
}

//go:embed bin
var binFS embed.FS

// cache holds the decompressed wrappers by GOARCH.
var cache sync.Map // string → func() ([]byte, error)

// GOARCHes lists the architectures (Go's names) Wrapper knows, sorted.
func GOARCHes() []string { return slices.Clone(goarches) }

// BinName is the file in bin/ that holds goarch's wrapper, gzipped.
func BinName(goarch string) string { return "wrapper-" + goarch + ".gz" }

// Toolchain is the Go toolchain that built the committed wrappers, as
// runtime.Version names it.
func Toolchain() (string, error) {
	b, err := binFS.ReadFile("bin/TOOLCHAIN")
	if err != nil {
		return "", err
	}
	return string(bytes.TrimSpace(b)), nil
}

// Wrapper returns the wrapper program for goarch (amd64, arm64, ...). The
// caller must not modify the bytes.
func Wrapper(goarch string) ([]byte, error) {
	if !slices.Contains(goarches, goarch) {
		return nil, fmt.Errorf("relocatable wrapper: no wrapper for GOARCH %q (known: %v)", goarch, goarches)
	}
	f, _ := cache.LoadOrStore(goarch, sync.OnceValues(func() ([]byte, error) {
		return readBin(BinName(goarch))
	}))
	return f.(func() ([]byte, error))()
}

// readBin decompresses the embedded file bin/name.
func readBin(name string) ([]byte, error) {
	f, err := binFS.Open("bin/" + name)
	if err != nil {
		return nil, fmt.Errorf("relocatable wrapper: %w", err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return nil, fmt.Errorf("relocatable wrapper bin/%s: %w", name, err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		return nil, fmt.Errorf("relocatable wrapper bin/%s: %w", name, err)
	}
	return b, nil
}

// ForSystem returns the wrapper for a Guix or Nix system name such as
// x86_64-linux or armhf-linux.
func ForSystem(system string) ([]byte, error) {
	p, err := platform.Lookup(system)
	if err != nil {
		return nil, err
	}
	return Wrapper(p.Architecture)
}

// Wrap returns the wrapped program that runs program, a file inside the
// store folder dir (a store item's file, such as
// /gnu/store/...-hello-2.12/bin/hello): a copy of wrapper, of the same
// length, whose block names them.
func Wrap(wrapper []byte, dir store.Dir, program string) ([]byte, error) {
	if _, _, err := dir.ParseInside(program); err != nil {
		return nil, fmt.Errorf("wrapping %s: %w", program, err)
	}
	b, err := area.Fill(wrapper, area.Paths{StoreDir: string(dir), Program: program})
	if err != nil {
		return nil, fmt.Errorf("wrapping %s: %w", program, err)
	}
	return b, nil
}

// Target reads what a wrapped program runs: its store folder and the
// program's path. It fails when b is not a wrapped program.
func Target(b []byte) (store.Dir, string, error) {
	p, err := area.Read(b)
	if err != nil {
		return "", "", err
	}
	return store.Dir(p.StoreDir), p.Program, nil
}

// BuildCommand is the command that builds goarch's wrapper into out,
// reproducibly: run it from within the module.
func BuildCommand(goarch, out string) *exec.Cmd {
	cmd := exec.Command("go", "build", "-trimpath", "-buildvcs=false", "-ldflags=-s -w -buildid= -E=main.entry", "-o", out, WrapperPackage)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+goarch, "GOFLAGS=", "GOTOOLCHAIN=local")
	cmd.Env = append(cmd.Env, levels...)
	return cmd
}
