package oracle

import (
	"bytes"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// NixEnv is the environment for running Nix's tools as root in
// single-user mode, on a machine set up by nothing but its packages: the
// test process's environment without its NIX_* variables, then
// NIX_REMOTE empty (no daemon), NIX_CONFIG "build-users-group =" (build
// as root: Debian's nix.conf names a nixbld group that a fresh machine
// does not have), then extra (such as NIX_STORE_DIR=/gnu/store).
func NixEnv(extra ...string) []string {
	env := slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "NIX_") })
	env = append(env, "NIX_REMOTE=", "NIX_CONFIG=build-users-group =")
	return append(env, extra...)
}

// Nix is the command running Nix's tool (found with Require) with args in
// NixEnv(extra...).
func Nix(t testing.TB, extra []string, tool string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(Require(t, tool), args...)
	cmd.Env = NixEnv(extra...)
	return cmd
}

// Output runs cmd and returns what it printed on stdout; when it fails,
// the test fails with its stderr. Tests read only stdout from the real
// tools: what they print on stderr (warnings about the machine's
// configuration, progress) depends on the machine.
func Output(t testing.TB, cmd *exec.Cmd) []byte {
	t.Helper()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(cmd.Args, " "), err, stderr.Bytes())
	}
	return out
}
