package storepack

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestMain points the layer cache at a folder of this run, not the user's,
// keeping Go's build cache where it was (it also follows XDG_CACHE_HOME).
func TestMain(m *testing.M) {
	if os.Getenv("GOCACHE") == "" {
		if out, err := exec.Command("go", "env", "GOCACHE").Output(); err == nil {
			os.Setenv("GOCACHE", strings.TrimSpace(string(out)))
		}
	}
	dir, err := os.MkdirTemp("", "storepack-test-cache-")
	if err != nil {
		panic(err)
	}
	os.Setenv("XDG_CACHE_HOME", dir)
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
