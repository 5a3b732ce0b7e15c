package storepack

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/storepack/storepack/internal/oracle"
	"github.com/storepack/storepack/internal/platform"
)

// buildGreeter builds testdata/relocatable/greeter.nix with Nix into a
// chroot store under a temporary folder (its items at ROOT/nix/store):
// a C program linked against a library named by its absolute store path,
// its loader and libc copied into the store. It returns ROOT, the store
// paths of the greeter and libgreet items, and the greeter's closure.
func buildGreeter(t *testing.T) (root, greeter, libgreet string, closure []string) {
	t.Helper()
	oracle.Require(t, "gcc") // used by the builders, through sandbox-paths
	oracle.Require(t, "readelf")
	nixFile, err := filepath.Abs(filepath.Join("testdata", "relocatable", "greeter.nix"))
	must(t, err)
	nonce := make([]byte, 8)
	_, err = rand.Read(nonce)
	must(t, err)
	root = t.TempDir()
	build := func(attr string) string {
		cmd := oracle.Nix(t, nil, "nix-build", "--store", root,
			"--option", "build-users-group", "", "--option", "substituters", "",
			"--option", "sandbox-paths", "/bin /usr /lib /lib64",
			"--no-out-link", nixFile, "--argstr", "nonce", hex.EncodeToString(nonce), "-A", attr)
		return strings.TrimSpace(string(oracle.Output(t, cmd)))
	}
	greeter, libgreet = build("greeter"), build("libgreet")
	out := oracle.Output(t, oracle.Nix(t, nil, "nix-store", "--store", root, "-qR", greeter))
	closure = strings.Fields(string(out))
	return root, greeter, libgreet, closure
}

// TestRelocatableNixProgram: a relocatable tarball of a program built by
// Nix in a chroot store, whose closure (the program, a shared library it
// loads by its absolute store path, the ELF loader and libc) is not in
// the host's /nix/store, unpacked by nobody into two fresh folders under
// /tmp: the program run directly cannot start (its loader is not on the
// host); through the wrapper it runs, loads the library at its store path
// in the pack, gets its arguments, and its exit statuses and the signals
// that end it (its own and those sent to the wrapper) pass through; the
// two copies run at the same time, each waiting for the other.
func TestRelocatableNixProgram(t *testing.T) {
	tarBin := oracle.Require(t, "tar")
	setpriv := oracle.Require(t, "setpriv")
	oracle.RequireRoot(t)
	system, ok := platform.Host()
	if !ok {
		t.Skipf("storepack knows no system for %s", system)
	}

	chroot, greeter, libgreet, closure := buildGreeter(t)
	if len(closure) != 3 || !slices.Contains(closure, greeter) || !slices.Contains(closure, libgreet) {
		t.Fatalf("the greeter's closure is %q, want it, libgreet and glibc", closure)
	}
	for _, p := range closure {
		if _, err := os.Stat(filepath.Join(chroot, p)); err != nil {
			t.Fatalf("the chroot store lacks %s: %v", p, err)
		}
		// The wrapper would run the host's copy without any namespace.
		if _, err := os.Lstat(p); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("the host has %s (%v): the test would not show relocation", p, err)
		}
	}

	dir := t.TempDir()
	spec := `store {
  dir  = "/nix/store"
  root = "` + chroot + `"
}

export "greeter" {
  format      = "tarball"
  paths       = ["` + greeter + `"]
  systems     = ["` + system + `"]
  profile     = true
  relocatable = true
}
`
	must(t, os.WriteFile(filepath.Join(dir, "storepack.hcl"), []byte(spec), 0o644))
	out := t.TempDir()
	files, err := Export(Options{SpecDir: dir, OutDir: out, CacheDir: testCache(t)})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 1 {
		t.Fatalf("files %+v, want one tarball", files)
	}
	tarball := filepath.Join(out, files[0].Path)
	one, two := unpackAsNobody(t, tarBin, setpriv, tarball), unpackAsNobody(t, tarBin, setpriv, tarball)
	if target, err := os.Readlink(filepath.Join(one, "bin")); err != nil || strings.HasPrefix(target, "/") {
		t.Errorf("/bin -> %q (%v), want a relative link", target, err)
	}
	for _, p := range closure {
		if _, err := os.Stat(filepath.Join(one, p)); err != nil {
			t.Errorf("the pack lacks %s: %v", p, err)
		}
	}

	// The real program, run directly, finds no loader at its store path.
	if err := exec.Command(filepath.Join(one, greeter, "bin/greeter"), "greet").Run(); !errors.Is(err, syscall.ENOENT) {
		t.Errorf("the unpacked program run without its wrapper: %v, want ENOENT (its loader is not on the host)", err)
	}

	asNobody := func(args ...string) *exec.Cmd {
		cmd := exec.Command(setpriv, append([]string{"--reuid=65534", "--regid=65534", "--clear-groups"}, args...)...)
		cmd.Dir = "/tmp"
		return cmd
	}
	prog1, prog2 := filepath.Join(one, "bin/greeter"), filepath.Join(two, "bin/greeter")
	greeting := func(argv ...string) string {
		return "hello from libgreet\nlibrary=" + libgreet + "/lib/libgreet.so\nexe=" + greeter + "/bin/greeter\nargs=" + strings.Join(argv, " ") + "\n"
	}

	t.Run("greet", func(t *testing.T) {
		b, err := asNobody(prog1, "greet", "two words", "x").CombinedOutput()
		if want := greeting(prog1, "greet", "two words", "x"); err != nil || string(b) != want {
			t.Errorf("%s greet as nobody: %q, %v; want %q", prog1, b, err, want)
		}
	})

	t.Run("two copies at once", func(t *testing.T) {
		meet, err := os.MkdirTemp("/tmp", "storepack-meet-")
		must(t, err)
		t.Cleanup(func() { os.RemoveAll(meet) })
		must(t, os.Chown(meet, 65534, 65534))
		// Each copy marks its start and waits for the other's mark.
		c1, c2 := asNobody(prog1, "meet", meet, "one", "two"), asNobody(prog2, "meet", meet, "two", "one")
		var o1, o2 strings.Builder
		c1.Stdout, c1.Stderr, c2.Stdout, c2.Stderr = &o1, &o1, &o2, &o2
		must(t, c1.Start())
		must(t, c2.Start())
		e1, e2 := c1.Wait(), c2.Wait()
		if want := greeting(prog1, "meet", meet, "one", "two"); e1 != nil || o1.String() != want {
			t.Errorf("copy one: %q, %v; want %q", o1.String(), e1, want)
		}
		if want := greeting(prog2, "meet", meet, "two", "one"); e2 != nil || o2.String() != want {
			t.Errorf("copy two: %q, %v; want %q", o2.String(), e2, want)
		}
	})

	t.Run("exit status", func(t *testing.T) {
		for _, code := range []int{0, 3, 255} {
			cmd := asNobody(prog2, "exit", strconv.Itoa(code))
			b, err := cmd.CombinedOutput()
			if cmd.ProcessState == nil || cmd.ProcessState.ExitCode() != code || len(b) != 0 {
				t.Errorf("exit %d: status %v, output %q, %v", code, cmd.ProcessState, b, err)
			}
		}
	})

	t.Run("signals", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			send syscall.Signal // sent to the wrapper once the program is ready; 0: it kills itself
			want syscall.Signal
		}{
			{"kills itself", 0, syscall.SIGTERM},
			{"SIGTERM sent", syscall.SIGTERM, syscall.SIGTERM},
			{"SIGUSR1 sent", syscall.SIGUSR1, syscall.SIGUSR1},
		} {
			t.Run(tc.name, func(t *testing.T) {
				var cmd *exec.Cmd
				if tc.send == 0 {
					cmd = asNobody(prog1, "kill")
					must(t, cmd.Start())
				} else {
					cmd = asNobody(prog1, "wait")
					stdout, err := cmd.StdoutPipe()
					must(t, err)
					must(t, cmd.Start())
					line, err := bufio.NewReader(stdout).ReadString('\n')
					if err != nil || line != "ready\n" {
						cmd.Process.Kill()
						cmd.Wait()
						t.Fatalf("wait: %q, %v", line, err)
					}
					// setpriv execs the wrapper: its process is the wrapper.
					must(t, cmd.Process.Signal(tc.send))
				}
				done := make(chan error, 1)
				go func() { done <- cmd.Wait() }()
				select {
				case <-done:
				case <-time.After(30 * time.Second):
					cmd.Process.Kill()
					<-done
					t.Fatal("the wrapper did not end within 30 s")
				}
				ws := cmd.ProcessState.Sys().(syscall.WaitStatus)
				if !ws.Signaled() || ws.Signal() != tc.want || ws.CoreDump() {
					t.Errorf("the wrapper ended with %v, want killed by %v (no core dump)", cmd.ProcessState, tc.want)
				}
			})
		}
	})
}
