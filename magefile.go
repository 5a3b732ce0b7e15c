//go:build mage

// This repository's own tasks. Run them with `go run mage.go TARGET`
// (no mage install needed) or `mage TARGET`. The storepack targets
// (export, plan, lock, verify) come from the importable package mage and
// run on the bundled examples.
package main

import (
	"fmt"
	"os"
	"os/exec"

	"github.com/magefile/mage/mg"
	"github.com/magefile/mage/sh"

	"github.com/storepack/storepack/internal/gotest"

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

// Test runs go vet, checks that gofmt and go mod tidy change nothing, then the whole test suite with the real tools required (bash .ci/run --install-only installs them), and lists every skipped test with its reason.
func Test() error {
	mg.Deps(Examples)
	if err := sh.RunV("go", "vet", "./..."); err != nil {
		return err
	}
	if out, err := sh.Output("gofmt", "-l", "."); err != nil || out != "" {
		return fmt.Errorf("gofmt -l lists files to format:\n%s (%v)", out, err)
	}
	if err := sh.RunV("go", "mod", "tidy", "-diff"); err != nil {
		return fmt.Errorf("go.mod or go.sum is not tidy (the diff above): run go mod tidy")
	}
	cmd := exec.Command("go", "test", "-json", "-count=1", "-timeout=40m", "./...")
	cmd.Env = append(os.Environ(), "STOREPACK_ORACLES=require")
	cmd.Stderr = os.Stderr
	events, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	sum, rerr := gotest.Report(events, os.Stdout)
	if err := cmd.Wait(); err != nil {
		return fmt.Errorf("go test: %w", err)
	}
	if rerr != nil {
		return rerr
	}
	if sum.Failed > 0 {
		return fmt.Errorf("%d tests failed", sum.Failed)
	}
	return nil
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
