package relocate

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/storepack/storepack/store"
)

// These tests run wrapped programs for real, as nobody (setpriv), from
// packs unpacked by hand into fresh folders under /tmp: the program is a
// shell script whose interpreter (busybox) and greeting are other store
// items, found by their absolute store paths.

// nix32 is Nix's base32 alphabet.
const nix32 = "0123456789abcdfghijklmnpqrsvwxyz"

// randomHash is a random store hash part, so that no host store has it.
func randomHash(t *testing.T) string {
	b := make([]byte, store.HashLen)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	for i := range b {
		b[i] = nix32[int(b[i])%len(nix32)]
	}
	return string(b)
}

// pack is a pack's layout: its store folder and items' store paths.
type pack struct {
	dir                             store.Dir
	busybox, data, hello, profile   string // store paths of the items
	program, wrapped, wrappedApplet string // the real program; its wrapper; a wrapper of busybox itself
}

// newPack lays out a pack's store paths for dir, with fresh hashes.
func newPack(t *testing.T, dir store.Dir) pack {
	p := pack{dir: dir}
	p.busybox = string(dir.Join(randomHash(t) + "-busybox-1.36"))
	p.data = string(dir.Join(randomHash(t) + "-data"))
	p.hello = string(dir.Join(randomHash(t) + "-hello-2.12"))
	p.profile = string(dir.Join(randomHash(t) + "-profile"))
	p.program = p.hello + "/bin/hello"
	p.wrapped = p.profile + "/bin/hello"
	p.wrappedApplet = p.profile + "/bin/cat"
	return p
}

// script is the real program: it greets with the data item's file, or
// exits, kills itself, waits for a signal or meets another copy.
const script = `#!%[1]s/bin/sh
case "$1" in
greet) cat %[2]s/greeting; echo "cwd=$(pwd)"; echo "uid=$(id -u) gid=$(id -g)"; echo "args=$*";;
exit) exit "$2";;
kill) kill -TERM $$;;
trap) trap 'echo got TERM; exit 42' TERM; echo ready; while :; do sleep 0.05; done;;
meet) : > "$2/$3"; i=0; while [ ! -e "$2/$4" ]; do sleep 0.05; i=$((i+1)); [ $i -gt 400 ] && exit 9; done; cat %[2]s/greeting;;
ns) readlink /proc/self/ns/user;;
cpus) while read -r k v; do [ "$k" = Cpus_allowed_list: ] && echo "$v"; done < /proc/self/status;;
esac
`

// unpack writes p into root as an unpacked pack: busybox, the greeting,
// the script and the two wrappers (of the script and of busybox's cat).
func (p pack) unpack(t *testing.T, root, greeting string) {
	t.Helper()
	w, err := Wrapper(runtime.GOARCH)
	if err != nil {
		t.Fatal(err)
	}
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Skip("needs /bin/busybox (busybox-static):", err)
	}
	wrapped, err := Wrap(w, p.dir, p.program)
	if err != nil {
		t.Fatal(err)
	}
	applet, err := Wrap(w, p.dir, p.busybox+"/bin/busybox")
	if err != nil {
		t.Fatal(err)
	}
	files := []struct {
		path string
		data []byte
		mode os.FileMode
	}{
		{p.busybox + "/bin/sh", bb, 0o555},
		{p.busybox + "/bin/busybox", bb, 0o555},
		{p.data + "/greeting", []byte(greeting + "\n"), 0o444},
		{p.program, fmt.Appendf(nil, script, p.busybox, p.data), 0o555},
		{p.wrapped, wrapped, 0o555},
		{p.wrappedApplet, applet, 0o555},
	}
	for _, f := range files {
		name := root + f.path
		if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(name, f.data, f.mode); err != nil {
			t.Fatal(err)
		}
	}
}

// asNobody returns a command running argv as nobody (uid and gid 65534,
// no groups) in dir. It skips the test when that or user namespaces are
// not available.
func asNobody(t *testing.T, dir string, argv ...string) *exec.Cmd {
	t.Helper()
	setpriv, err := exec.LookPath("setpriv")
	if err != nil || os.Getuid() != 0 {
		t.Skip("needs root and setpriv to run as nobody")
	}
	cmd := exec.Command(setpriv, append([]string{"--reuid=65534", "--regid=65534", "--clear-groups"}, argv...)...)
	cmd.Dir = dir
	return cmd
}

// tmpDir makes a fresh folder under /tmp that nobody can read (0755),
// removed at the end of the test.
func tmpDir(t *testing.T, mode os.FileMode) string {
	t.Helper()
	d, err := os.MkdirTemp("/tmp", "storepack-reloc-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	if err := os.Chmod(d, mode); err != nil {
		t.Fatal(err)
	}
	return d
}

// hostAbsentDir is a store folder that does not exist on this machine.
func hostAbsentDir(t *testing.T) store.Dir {
	for _, d := range []string{"/nix/store", "/gnu/store", "/opt/storepack-reloc-test/store", "/storepack-reloc-test/store"} {
		if _, err := os.Lstat(d); errors.Is(err, os.ErrNotExist) {
			return store.Dir(d)
		}
	}
	t.Skip("every candidate store folder exists on this machine")
	return ""
}

// run runs cmd and returns its output, stderr and wait status.
func run(t *testing.T, cmd *exec.Cmd) (string, string, syscall.WaitStatus) {
	t.Helper()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	return out.String(), errb.String(), cmd.ProcessState.Sys().(syscall.WaitStatus)
}

// TestRelocatedRun runs a wrapped program whose store folder is absent
// from the host (or holds other items: /gnu/store here) as nobody from a
// fresh folder: the program, its interpreter and its data are found at
// their store paths; arguments, argv[0], exit codes and signals pass.
func TestRelocatedRun(t *testing.T) {
	dirs := []store.Dir{hostAbsentDir(t)}
	if fi, err := os.Stat("/gnu/store"); err == nil && fi.IsDir() && dirs[0] != "/gnu/store" {
		dirs = append(dirs, "/gnu/store") // present on the host, without the pack's items
	}
	for _, dir := range dirs {
		t.Run(strings.ReplaceAll(string(dir), "/", "_"), func(t *testing.T) {
			root := tmpDir(t, 0o755)
			p := newPack(t, dir)
			p.unpack(t, root, "hello from "+string(dir))
			if _, err := os.Stat(p.program); err == nil {
				t.Fatalf("%s exists on the host", p.program)
			}
			cwd := tmpDir(t, 0o755)
			wrapper := root + p.wrapped

			out, stderr, ws := run(t, asNobody(t, cwd, wrapper, "greet", "a b", "c"))
			want := "hello from " + string(dir) + "\ncwd=" + cwd + "\nuid=65534 gid=65534\nargs=greet a b c\n"
			if ws.ExitStatus() != 0 || out != want {
				t.Fatalf("greet: status %v, output %q, stderr %q; want %q", ws, out, stderr, want)
			}

			// argv[0] reaches the program: busybox picks its applet by it.
			out, stderr, ws = run(t, asNobody(t, cwd, root+p.wrappedApplet, p.data+"/greeting"))
			if ws.ExitStatus() != 0 || out != "hello from "+string(dir)+"\n" {
				t.Errorf("cat through busybox's wrapper: status %v, output %q, stderr %q", ws, out, stderr)
			}

			// Through a symlink, as a profile's bin would point to it.
			link := filepath.Join(cwd, "hello")
			if err := os.Symlink(wrapper, link); err != nil {
				t.Fatal(err)
			}
			if out, stderr, ws = run(t, asNobody(t, cwd, link, "exit", "3")); !ws.Exited() || ws.ExitStatus() != 3 {
				t.Errorf("exit 3 through a symlink: status %v (exited %v), stderr %q", ws.ExitStatus(), ws.Exited(), stderr)
			}

			if _, stderr, ws = run(t, asNobody(t, cwd, wrapper, "kill")); !ws.Signaled() || ws.Signal() != syscall.SIGTERM {
				t.Errorf("a program killed by SIGTERM: status %#x (signaled %v), stderr %q", uint32(ws), ws.Signaled(), stderr)
			}

			// The program runs on every CPU the caller may use.
			if out, stderr, _ = run(t, asNobody(t, cwd, wrapper, "cpus")); out != ownCPUs(t) {
				t.Errorf("the program's CPUs: %q (stderr %q), want the caller's %q", out, stderr, ownCPUs(t))
			}
		})
	}
}

// ownCPUs is the CPUs this process may run on, as /proc/self/status
// lists them, with a newline.
func ownCPUs(t *testing.T) string {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "Cpus_allowed_list:"); ok {
			return strings.TrimSpace(v) + "\n"
		}
	}
	t.Fatal("no Cpus_allowed_list in /proc/self/status")
	return ""
}

// TestSignalForwarded sends SIGTERM to the wrapper's process: the
// program gets it, handles it and its exit status comes back.
func TestSignalForwarded(t *testing.T) {
	root, cwd := tmpDir(t, 0o755), tmpDir(t, 0o755)
	p := newPack(t, hostAbsentDir(t))
	p.unpack(t, root, "hello")
	cmd := asNobody(t, cwd, root+p.wrapped, "trap")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(stdout)
	if !lines.Scan() || lines.Text() != "ready" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("first line %q, stderr %q", lines.Text(), stderr.String())
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	var rest []string
	for lines.Scan() {
		rest = append(rest, lines.Text())
	}
	cmd.Wait()
	if code := cmd.ProcessState.ExitCode(); code != 42 || strings.Join(rest, "\n") != "got TERM" {
		t.Errorf("after SIGTERM to the wrapper: exit %d, output %q, stderr %q; want 42 and the program's trap", code, rest, stderr.String())
	}
}

// TestTwoCopiesAtOnce unpacks the same pack twice, each with its own
// greeting, and runs both at the same time: each waits for the other to
// start (through the host's /tmp, seen from both namespaces) and prints
// its own copy's greeting.
func TestTwoCopiesAtOnce(t *testing.T) {
	dir := hostAbsentDir(t)
	p := newPack(t, dir)
	meet := tmpDir(t, 0o777)
	var cmds [2]*exec.Cmd
	var outs [2]bytes.Buffer
	for i, name := range []string{"A", "B"} {
		root := tmpDir(t, 0o755)
		p.unpack(t, root, "copy "+name)
		cmds[i] = asNobody(t, tmpDir(t, 0o755), root+p.wrapped, "meet", meet, name, "AB"[1-i:2-i])
		cmds[i].Stdout, cmds[i].Stderr = &outs[i], &outs[i]
	}
	start := time.Now()
	for _, c := range cmds {
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
	}
	for i, c := range cmds {
		err := c.Wait()
		if want := "copy " + "AB"[i:i+1] + "\n"; err != nil || outs[i].String() != want {
			t.Errorf("copy %d: %v, output %q; want %q", i, err, outs[i].String(), want)
		}
	}
	t.Logf("both copies ran in %v", time.Since(start))
}

// TestFastPath runs a wrapper whose store folder exists on the host and
// holds the program: it execs the program without a namespace.
func TestFastPath(t *testing.T) {
	root := tmpDir(t, 0o755)
	dir, err := store.ParseDir(root + "/store")
	if err != nil {
		t.Fatal(err)
	}
	p := newPack(t, dir)
	p.unpack(t, "", "fast")
	cwd := tmpDir(t, 0o755)
	self, err := os.Readlink("/proc/self/ns/user")
	if err != nil {
		t.Skip(err)
	}
	out, stderr, ws := run(t, asNobody(t, cwd, p.wrapped, "ns"))
	if ws.ExitStatus() != 0 || strings.TrimSpace(out) != self {
		t.Errorf("user namespace of the program: %q (status %v, stderr %q); want the host's %q", out, ws, stderr, self)
	}
	if out, stderr, _ = run(t, asNobody(t, cwd, p.wrapped, "cpus")); out != ownCPUs(t) {
		t.Errorf("the program's CPUs: %q (stderr %q), want the caller's %q", out, stderr, ownCPUs(t))
	}

	// The same pack unpacked below another folder, the host's copy gone,
	// runs in a namespace of its own.
	if err := os.RemoveAll(root + "/store"); err != nil {
		t.Fatal(err)
	}
	other := tmpDir(t, 0o755)
	p.unpack(t, other, "relocated")
	out, stderr, ws = run(t, asNobody(t, cwd, other+p.wrapped, "ns"))
	if ws.ExitStatus() != 0 || strings.TrimSpace(out) == self || !strings.HasPrefix(out, "user:[") {
		t.Errorf("user namespace of the relocated program: %q (status %v, stderr %q); want another than %q", out, ws, stderr, self)
	}
}

// TestNoUserNamespaces runs the wrapper where it cannot make a user
// namespace, in a user namespace of the test's own: one whose
// max_user_namespaces is 0 (the message names the setting),
// and one nested in a namespace whose limit is used up (unshare's errno).
func TestNoUserNamespaces(t *testing.T) {
	root, cwd := tmpDir(t, 0o755), tmpDir(t, 0o755)
	p := newPack(t, hostAbsentDir(t))
	p.unpack(t, root, "hello")
	for _, c := range []struct{ name, shell, want string }{
		{"disabled", `echo 0 > /proc/sys/user/max_user_namespaces && exec "$0" greet`,
			"user namespaces are disabled on this machine: /proc/sys/user/max_user_namespaces is 0"},
		{"limit reached", `echo 1 > /proc/sys/user/max_user_namespaces && exec unshare --user --map-root-user "$0" greet`,
			"cannot make a user namespace (unshare): no space left on device (ENOSPC)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			out, stderr, ws := run(t, asNobody(t, cwd, "unshare", "--user", "--map-root-user", "/bin/sh", "-c", c.shell, root+p.wrapped))
			if ws.ExitStatus() != 127 || out != "" || !strings.Contains(stderr, c.want) || !strings.Contains(stderr, p.program) {
				t.Errorf("status %d, output %q, stderr %q; want 127 and a message naming %s and %q", ws.ExitStatus(), out, stderr, p.program, c.want)
			}
		})
	}
}

// TestWrapperFailures runs wrappers that cannot run their program and
// stop before making any namespace: one that is not inside a store
// folder, and one whose pack lacks the program. Each exits with 127 and
// a message naming the program and why.
func TestWrapperFailures(t *testing.T) {
	root := tmpDir(t, 0o755)
	p := newPack(t, hostAbsentDir(t))
	w, err := Wrapper(runtime.GOARCH)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Wrap(w, p.dir, p.program)
	if err != nil {
		t.Fatal(err)
	}
	outside := filepath.Join(root, "elsewhere", "hello")
	inPack := root + p.wrapped
	for _, name := range []string{outside, inPack} {
		if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(name, b, 0o555); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct{ name, path, want string }{
		{"outside a store folder", outside, "nor is this wrapper (" + outside + ") inside a store folder " + string(p.dir)},
		{"program not in the pack", inPack, "not in the pack: " + root + p.program + ": no such file or directory (ENOENT)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			out, stderr, ws := run(t, exec.Command(c.path, "greet"))
			if ws.ExitStatus() != 127 || out != "" || !strings.Contains(stderr, c.want) || !strings.Contains(stderr, "wrapper of "+p.program+":") {
				t.Errorf("status %d, output %q, stderr %q; want 127 and a message naming %s and %q", ws.ExitStatus(), out, stderr, p.program, c.want)
			}
		})
	}
}
