package relocate

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/storepack/storepack/internal/oracle"
	"github.com/storepack/storepack/store"
)

// qemus names the qemu-user program that runs each architecture's
// programs on another.
var qemus = map[string]string{
	"386": "qemu-i386", "amd64": "qemu-x86_64", "arm": "qemu-arm", "arm64": "qemu-aarch64",
	"mips64le": "qemu-mips64el", "ppc64le": "qemu-ppc64le", "riscv64": "qemu-riscv64", "s390x": "qemu-s390x",
}

// goBroken reports why qemu cannot run any Go program of goarch, as
// Debian 12's qemu-i386 cannot (a plain Go program crashes in the
// runtime's thread-local storage, nearly always): it builds one and runs
// it five times.
func goBroken(t *testing.T, qemu, goarch string) string {
	t.Helper()
	if goarch != "386" {
		return ""
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "main.go")
	if err := os.WriteFile(src, []byte("package main\n\nfunc main() { println(\"ok\") }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	build := exec.Command("go", "build", "-o", filepath.Join(dir, "hello"), src)
	build.Env = append(os.Environ(), "GOARCH="+goarch, "CGO_ENABLED=0", "GOFLAGS=")
	if b, err := build.CombinedOutput(); err != nil {
		t.Fatalf("%v: %v\n%s", build.Args, err, b)
	}
	// Its crash is a race between threads: a run or two may pass, so the
	// program must pass every one of several.
	for i := range 5 {
		if b, err := exec.Command(qemu, filepath.Join(dir, "hello")).CombinedOutput(); err != nil {
			first, _, _ := strings.Cut(string(b), "\n")
			return fmt.Sprintf("%s cannot run a plain Go program of %s here either (run %d of 5: %v: %s)", qemu, goarch, i+1, err, first)
		}
	}
	return ""
}

// cpusScript prints the CPUs the shell may run on: the program must get
// every CPU the caller may use.
const cpusScript = `while read -r k v; do [ "$k" = Cpus_allowed_list: ] && echo "$v"; done < /proc/self/status
true
`

// TestWrappersUnderQEMU runs every architecture's wrapper, which starts
// with entry code of its own before the Go runtime (wrapper/entry_*.s),
// under qemu-user (natively for this machine's architecture): the bare
// wrapper says it wraps nothing; a wrapped program present at its store
// path runs there, with its arguments and every CPU the caller has;
// one absent from it makes the wrapper unshare a user namespace, which
// qemu-user, a multi-threaded process, is refused with EINVAL (natively
// the program runs). Where qemu cannot run the Go runtime (Debian 12's
// qemu-i386), the program at its store path still runs, as the entry
// code execs it before the runtime starts; the rest, whose messages
// need the runtime, is skipped.
func TestWrappersUnderQEMU(t *testing.T) {
	root := tmpDir(t, 0o755)
	dir, err := store.ParseDir(root + "/store")
	if err != nil {
		t.Fatal(err)
	}
	item := string(dir.Join(randomHash(t) + "-hello"))
	program := item + "/bin/hello"
	if err := os.MkdirAll(filepath.Dir(program), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(program, []byte("#!/bin/sh\necho \"ran $*\"\n"+cpusScript), 0o755); err != nil {
		t.Fatal(err)
	}
	absent := string(hostAbsentDir(t))
	for _, goarch := range GOARCHes() {
		t.Run(goarch, func(t *testing.T) {
			w, err := Wrapper(goarch)
			if err != nil {
				t.Fatal(err)
			}
			var launcher []string
			broken := "" // why qemu cannot run the Go runtime of goarch
			if goarch != runtime.GOARCH {
				launcher = []string{oracle.Require(t, qemus[goarch])}
				broken = goBroken(t, launcher[0], goarch)
			}
			write := func(path string, b []byte) string {
				t.Helper()
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, b, 0o555); err != nil {
					t.Fatal(err)
				}
				return path
			}
			runIt := func(path string, args ...string) (string, string, int) {
				t.Helper()
				argv := append(append(append([]string{}, launcher...), path), args...)
				out, stderr, ws := run(t, exec.Command(argv[0], argv[1:]...))
				return out, stderr, ws.ExitStatus()
			}

			// The program at its store path: the entry code execs it
			// before the Go runtime starts, so this runs even where qemu
			// cannot run the runtime.
			b, err := Wrap(w, dir, program)
			if err != nil {
				t.Fatal(err)
			}
			direct := write(filepath.Join(root, goarch, "direct"), b)
			if out, stderr, code := runIt(direct, "a", "b c"); code != 0 || out != "ran a b c\n"+ownCPUs(t) {
				t.Errorf("program at its store path: status %d, output %q, stderr %q; want it run", code, out, stderr)
			}
			if broken != "" {
				t.Skip(broken + "; the wrapper's messages need it (the program at its store path ran)")
			}

			bare := write(filepath.Join(root, goarch, "bare"), w)
			if out, stderr, code := runIt(bare); code != 127 || out != "" || !strings.Contains(stderr, "this is the wrapper itself") {
				t.Errorf("bare wrapper: status %d, output %q, stderr %q; want 127 and a message", code, out, stderr)
			}

			// The same program, in a pack unpacked below root whose store
			// folder is absent from this machine.
			b, err = Wrap(w, store.Dir(absent), absent+strings.TrimPrefix(program, string(dir)))
			if err != nil {
				t.Fatal(err)
			}
			pack := filepath.Join(root, goarch, "pack")
			write(pack+absent+strings.TrimPrefix(program, string(dir)), []byte("#!/bin/sh\necho \"ran $*\"\n"+cpusScript))
			relocated := write(pack+absent+"/"+randomHash(t)+"-profile/bin/hello", b)
			out, stderr, code := runIt(relocated, "x")
			switch {
			case launcher == nil && (code != 0 || out != "ran x\n"+ownCPUs(t)):
				t.Errorf("relocated program: status %d, output %q, stderr %q; want it run", code, out, stderr)
			case launcher != nil && (code != 127 || !strings.Contains(stderr, "cannot make a user namespace (unshare): invalid argument (EINVAL)")):
				t.Errorf("relocated program under qemu: status %d, output %q, stderr %q; want unshare refused with EINVAL", code, out, stderr)
			}
		})
	}
}

// TestWrapperWithoutEntry builds the wrapper without its entry point
// (no -E): run, it says how it must be built instead of running anything.
func TestWrapperWithoutEntry(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: builds the wrapper")
	}
	out := filepath.Join(t.TempDir(), "wrapper")
	build := exec.Command("go", "build", "-o", out, WrapperPackage)
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=")
	if b, err := build.CombinedOutput(); err != nil {
		t.Fatalf("%v: %v\n%s", build.Args, err, b)
	}
	o, stderr, ws := run(t, exec.Command(out))
	if ws.ExitStatus() != 127 || o != "" || !strings.Contains(stderr, "built without its entry point (go build -ldflags=-E=main.entry)") {
		t.Errorf("status %d, output %q, stderr %q; want 127 and the build flag named", ws.ExitStatus(), o, stderr)
	}
}
