package relocate

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// earlyLeaves are the functions outside the wrapper's own that its entry
// code may reach before the Go runtime starts: the runtime's memory
// routines (assembly that needs no goroutine), the panics of a failed
// bounds check (reached by a bug alone, which then crashes), and the
// runtime's entry point, where the entry code goes when it returns.
var earlyLeaves = regexp.MustCompile(`^(runtime\.(memmove|memequal|panicBounds|panicIndex\w*|panicSlice\w*|panicunsafe\w*)|_rt0_\w+_linux)$`)

// TestEarlyNeedsNoRuntime checks, in every architecture's wrapper that
// go tool objdump can read, that the code its entry point reaches before
// the Go runtime starts (wrapper/early.go) never needs the runtime: no
// function reached grows its stack (a call of runtime.morestack, which
// needs a goroutine; //go:nosplit functions have none), and none is the
// runtime's but earlyLeaves. The linker already refuses a chain of
// //go:nosplit functions deeper than the stack they may assume.
func TestEarlyNeedsNoRuntime(t *testing.T) {
	for _, goarch := range GOARCHes() {
		t.Run(goarch, func(t *testing.T) {
			if goarch == "mips64le" {
				t.Skip("go tool objdump cannot disassemble mips64le")
			}
			out := filepath.Join(t.TempDir(), "wrapper")
			// BuildCommand's build, with its symbols kept.
			build := exec.Command("go", "build", "-trimpath", "-buildvcs=false", "-ldflags=-E=main.entry", "-o", out, WrapperPackage)
			build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+goarch, "GOFLAGS=", "GOTOOLCHAIN=local")
			build.Env = append(build.Env, levels...)
			if b, err := build.CombinedOutput(); err != nil {
				t.Fatalf("%v: %v\n%s", build.Args, err, b)
			}
			dis, err := exec.Command("go", "tool", "objdump", out).Output()
			if err != nil {
				t.Fatalf("go tool objdump: %v", err)
			}
			funcs, entries := disassembly(string(dis), "entry_"+goarch+".s")
			if len(entries) == 0 {
				t.Fatalf("no function of entry_%s.s in the disassembly", goarch)
			}
			seen := map[string]bool{}
			queue := entries
			for len(queue) > 0 {
				name := queue[0]
				queue = queue[1:]
				if seen[name] {
					continue
				}
				seen[name] = true
				body, ok := funcs[name]
				switch {
				case earlyLeaves.MatchString(name):
					continue
				case !ok:
					t.Errorf("%s: reached before the runtime, not in the disassembly", name)
					continue
				case strings.HasPrefix(name, "runtime."):
					t.Errorf("%s: the runtime's, reached before the runtime starts", name)
					continue
				case strings.Contains(body, "runtime.morestack"):
					t.Errorf("%s: checks its stack (not //go:nosplit), reached before the runtime starts", name)
					continue
				}
				for _, m := range symbolRef.FindAllStringSubmatch(body, -1) {
					if _, isFunc := funcs[m[1]]; isFunc || earlyLeaves.MatchString(m[1]) {
						queue = append(queue, m[1])
					}
				}
			}
			// The check has something to check: early's functions.
			for _, want := range []string{"main.early", "main.mirror", "syscall.RawSyscall6"} {
				if !seen[want] {
					t.Errorf("%s not reached from the entry point; reached: %v", want, slices.Sorted(mapsKeys(seen)))
				}
			}
		})
	}
}

// symbolRef is a reference to a symbol in go tool objdump's output.
var symbolRef = regexp.MustCompile(`\s([\w./*()\[\]-]+)\(SB\)`)

// disassembly splits go tool objdump's output into functions' bodies by
// name, and names those of the file entryFile.
func disassembly(dis, entryFile string) (map[string]string, []string) {
	funcs := map[string]string{}
	var entries []string
	for _, part := range strings.Split(dis, "\nTEXT ")[1:] {
		head, body, _ := strings.Cut(part, "\n")
		name, file, _ := strings.Cut(head, " ")
		name = strings.TrimSuffix(name, "(SB)")
		funcs[name] = body
		if strings.HasSuffix(file, "/"+entryFile) {
			entries = append(entries, name)
		}
	}
	return funcs, entries
}

func mapsKeys(m map[string]bool) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}
