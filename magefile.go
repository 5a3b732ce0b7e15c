//go:build mage

// This repository's own tasks. Run them with `go run mage.go TARGET`
// (no mage install needed) or `mage TARGET`. The storepack targets
// (export, plan, lock, verify) come from the importable package mage and
// run on the bundled examples.
package main

import (
	"os"

	"github.com/magefile/mage/mg"
	"github.com/magefile/mage/sh"

	//mage:import
	storepackmage "github.com/storepack/storepack/mage"
)

func init() {
	if os.Getenv("STOREPACK_SPEC") == "" {
		storepackmage.Options.SpecDir = "examples"
	}
	storepackmage.Deps = []any{Examples}
}

// Examples builds the example program that the bundled specs add as a source (static, reproducible).
func Examples() error {
	for _, arch := range []string{"amd64", "arm64"} {
		env := map[string]string{"CGO_ENABLED": "0", "GOOS": "linux", "GOARCH": arch, "GOFLAGS": ""}
		out := "examples/build/" + arch + "/app"
		if err := sh.RunWith(env, "go", "build", "-trimpath", "-buildvcs=false", "-ldflags=-s -w -buildid=", "-o", out, "./examples/app"); err != nil {
			return err
		}
	}
	return nil
}

// Test runs the whole test suite; the real tools (Nix, skopeo, umoci, podman, registry) must be installed (bash .ci/run --install-only).
func Test() error {
	mg.Deps(Examples)
	env := map[string]string{"STOREPACK_ORACLES": "require"}
	if err := sh.RunV("go", "vet", "./..."); err != nil {
		return err
	}
	return sh.RunWithV(env, "go", "test", "-count=1", "-timeout=40m", "./...")
}

// Bench compares storepack with the real tools side by side and prints wall-time ratios and peak memory.
func Bench() error {
	return sh.RunV("go", "run", "./internal/bench")
}

// Fuzz runs each fuzz target for a short time (FUZZTIME, default 30s): the NAR reader and writer, the bundle reader and the spec loader.
func Fuzz() error {
	t := os.Getenv("FUZZTIME")
	if t == "" {
		t = "30s"
	}
	for _, f := range []struct{ pkg, name string }{
		{"./nar", "FuzzReader"},
		{"./nar", "FuzzRoundTrip"},
		{"./nar", "FuzzBundleReader"},
		{"./spec", "FuzzLoad"},
	} {
		if err := sh.RunV("go", "test", "-run=^$", "-fuzz=^"+f.name+"$", "-fuzztime="+t, f.pkg); err != nil {
			return err
		}
	}
	return nil
}
