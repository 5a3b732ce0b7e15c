// Command build rebuilds the relocatable wrappers committed in
// export/relocate/bin: each architecture's wrapper, gzipped, and TOOLCHAIN,
// the Go toolchain that built them. Run it from export/relocate (`go
// generate ./export/relocate`).
package main

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/storepack/storepack/export/relocate"
)

func main() {
	if err := build("bin"); err != nil {
		fmt.Fprintln(os.Stderr, "build:", err)
		os.Exit(1)
	}
}

// build writes every wrapper and TOOLCHAIN into dir.
func build(dir string) error {
	tmp, err := os.MkdirTemp("", "storepack-wrapper-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	version, err := exec.Command("go", "env", "GOVERSION").Output()
	if err != nil {
		return fmt.Errorf("go env GOVERSION: %w", err)
	}
	for _, goarch := range relocate.GOARCHes() {
		out := filepath.Join(tmp, goarch)
		cmd := relocate.BuildCommand(goarch, out)
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("building the %s wrapper: %w", goarch, err)
		}
		b, err := os.ReadFile(out)
		if err != nil {
			return err
		}
		var z bytes.Buffer
		zw, err := gzip.NewWriterLevel(&z, gzip.BestCompression)
		if err != nil {
			return err
		}
		if _, err := zw.Write(b); err != nil {
			return err
		}
		if err := zw.Close(); err != nil {
			return err
		}
		name := filepath.Join(dir, relocate.BinName(goarch))
		if err := os.WriteFile(name, z.Bytes(), 0o644); err != nil {
			return err
		}
		fmt.Printf("%s: %d bytes (%d gzipped)\n", name, len(b), z.Len())
	}
	return os.WriteFile(filepath.Join(dir, "TOOLCHAIN"), []byte(strings.TrimSpace(string(version))+"\n"), 0o644)
}
