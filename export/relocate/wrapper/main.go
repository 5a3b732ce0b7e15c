//go:build linux

// Command wrapper is the relocatable wrapper: storepack puts a copy of
// it, whose block (package export/relocate/area) names the real program's
// store path and the store folder, in place of each program of a
// relocatable pack. Run from wherever the pack was unpacked, it makes the
// pack's store appear at the store folder and runs the program there.
//
// Its entry code (entry.go, early.go), before the Go runtime starts:
//
//   - when the program exists at its store path on this machine (the pack
//     was unpacked at /, or the machine has the items), makes no
//     namespace and execs the program there;
//   - otherwise unshares a new user and mount namespace, maps the
//     caller's uid and gid to themselves, with setgroups denied (as
//     `unshare -r` does), and builds the pack's root: a tmpfs made the
//     root (pivot_root), every top-level entry of the host's root bound
//     into it (but the store folder's top-level folder) and ROOT/<store
//     folder> bound at the store folder; the host's root detached. It
//     returns to the working folder and execs the program with the same
//     arguments (argv[0] kept) and environment.
//
// It finds the pack's root, ROOT, from its own location: /proc/self/exe
// is ROOT/<store folder>/<item>/..., the last such store folder in the
// path followed by a store item's name.
//
// The program replaces the wrapper (exec): it has the wrapper's pid, its
// signals and its exit status, with nothing in between. The Go runtime
// starts only when a step failed, for main to say which.
//
// When user namespaces are unavailable it fails with exit status 127 and
// a message naming the reason: /proc/sys/user/max_user_namespaces being
// 0, Debian's kernel.unprivileged_userns_clone, Ubuntu's AppArmor
// restriction, or the errno of unshare or mount.
package main

import (
	"errors"
	"os"
	"strings"
	"syscall"

	"github.com/storepack/storepack/export/relocate/area"
)

// exitFail is the exit status of a wrapper that could not run its program.
const exitFail = 127

// main runs only when early could not run the program: it says why.
func main() {
	if earlyRan == 0 {
		fail("", "built without its entry point (go build -ldflags=-E=main.entry)")
	}
	t, err := area.Parse(block[area.MagicLen:])
	if err != nil {
		fail("", "this is the wrapper itself, not a wrapped program: "+err.Error())
	}
	fail(t.Program, failure(failedStep, syscall.Errno(failedErrno), cstring(failedPath[:]), t.StoreDir, "/proc"))
}

// stepWhat says what each step of making the pack's root does.
var stepWhat = [...]string{
	stepOpen: "opening", stepWrite: "writing", stepPrivate: "making / private",
	stepTmpfs: "mounting a tmpfs on", stepMkdir: "making", stepPivot: "pivot_root",
	stepEnter: "entering", stepList: "reading", stepBind: "binding the pack's store",
	stepDetach: "detaching the host's root", stepRemove: "removing",
}

// failure explains early's failed step with its errno and path, reading
// the settings below proc that explain namespace errors.
func failure(step uintptr, errno syscall.Errno, path, storeDir, proc string) string {
	switch step {
	case stepExec:
		return "exec: " + errnoText(errno)
	case stepSelf:
		return path + ": " + errnoText(errno)
	case stepPlace:
		return "neither found at its store path nor is this wrapper (" + path + ") inside a store folder " + storeDir
	case stepMissing:
		return "not in the pack: " + path + ": " + errnoText(errno)
	case stepUnshare:
		if why := disabled(proc); why != "" {
			return why
		}
		return namespaceError("a user namespace (unshare)", errno, proc)
	}
	if step < uintptr(len(stepWhat)) && stepWhat[step] != "" {
		return namespaceError("the pack's root", &stepError{stepWhat[step], path, errno}, proc)
	}
	return "the entry code stopped without saying why (step " + itoa(int(step)) + ")"
}

// stepError is a failed step of making the pack's root: what it did,
// on which path.
type stepError struct {
	what, path string
	err        error
}

func (e *stepError) Error() string { return e.what + " " + e.path + ": " + e.err.Error() }
func (e *stepError) Unwrap() error { return e.err }

// itoa formats a non-negative int (the wrapper does without strconv).
func itoa(n int) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + n%10)
		if n /= 10; n == 0 {
			return string(b[i:])
		}
	}
}

// errnoText is err's message followed by its errno's name, when it is one.
func errnoText(err error) string {
	var e syscall.Errno
	if errors.As(err, &e) {
		if name := errnoNames[e]; name != "" {
			return err.Error() + " (" + name + ")"
		}
	}
	return err.Error()
}

// errnoNames names the errnos unshare, mount and pivot_root give.
var errnoNames = map[syscall.Errno]string{
	syscall.EPERM: "EPERM", syscall.EACCES: "EACCES", syscall.EINVAL: "EINVAL",
	syscall.ENOSPC: "ENOSPC", syscall.ENOMEM: "ENOMEM", syscall.EUSERS: "EUSERS",
	syscall.ENOENT: "ENOENT", syscall.ENOTDIR: "ENOTDIR", syscall.EBUSY: "EBUSY",
	syscall.ENOSYS: "ENOSYS",
}

// disabled reads, below proc (/proc), the settings that turn
// unprivileged user namespaces off and says which one does, or "".
func disabled(proc string) string {
	if v, ok := readSetting(proc + "/sys/user/max_user_namespaces"); ok && v == "0" {
		return "user namespaces are disabled on this machine: " + proc + "/sys/user/max_user_namespaces is 0; " + advice
	}
	if v, ok := readSetting(proc + "/sys/kernel/unprivileged_userns_clone"); ok && v == "0" {
		return "unprivileged user namespaces are disabled on this machine: " + proc + "/sys/kernel/unprivileged_userns_clone is 0; " + advice
	}
	return ""
}

// advice ends the messages about disabled user namespaces.
const advice = "a relocatable pack needs unprivileged user namespaces (ask the administrator to enable them), or unpack it at / as root"

// namespaceError explains a failure to make a namespace or mount in it:
// err with its errno, then which setting of proc explains it, if any.
func namespaceError(what string, err error, proc string) string {
	msg := "cannot make " + what + ": " + errnoText(err)
	if why := disabled(proc); why != "" {
		return msg + "; " + why
	}
	if v, ok := readSetting(proc + "/sys/kernel/apparmor_restrict_unprivileged_userns"); ok && v == "1" {
		return msg + "; AppArmor restricts unprivileged user namespaces on this machine (" +
			proc + "/sys/kernel/apparmor_restrict_unprivileged_userns is 1); " + advice
	}
	if errors.Is(err, syscall.ENOSPC) {
		msg += "; the number of user namespaces allowed (max_user_namespaces, here or in an enclosing user namespace) is reached"
	}
	if v, ok := readSetting(proc + "/sys/user/max_user_namespaces"); ok {
		return msg + " (" + proc + "/sys/user/max_user_namespaces is " + v + ")"
	}
	return msg
}

// readSetting reads a one-line file of /proc/sys.
func readSetting(path string) (string, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", false
	}
	return strings.TrimSpace(string(b)), true
}

// fail prints why program cannot run and exits with exitFail.
func fail(program, why string) {
	msg := "storepack relocatable wrapper"
	if program != "" {
		msg += " of " + program
	}
	os.Stderr.WriteString(msg + ": " + why + "\n")
	os.Exit(exitFail)
}
