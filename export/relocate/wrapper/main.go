//go:build linux

//go:debug containermaxprocs=0
//go:debug updatemaxprocs=0

// Command wrapper is the relocatable wrapper: storepack puts a copy of
// it, whose block (package export/relocate/area) names the real program's
// store path and the store folder, in place of each program of a
// relocatable pack. Run from wherever the pack was unpacked, it makes the
// pack's store appear at the store folder and runs the program there.
//
// Its entry code (entry.go), before the Go runtime starts:
//
//   - when the program exists at its store path on this machine (the pack
//     was unpacked at /, or the machine has the items), makes no
//     namespace, and main execs the program there;
//   - otherwise unshares a new user and mount namespace, in which main
//     maps the caller's uid and gid to themselves, with setgroups denied
//     (as `unshare -r` does; ns.go), and builds the pack's root: a tmpfs
//     made the root (pivot_root), every top-level entry of the host's
//     root bound into it (but the store folder's top-level folder) and
//     ROOT/<store folder> bound at the store folder; the host's root
//     detached. It returns to the working folder and execs the program
//     with the same arguments (argv[0] kept) and environment.
//
// It finds the pack's root, ROOT, from its own location: /proc/self/exe
// is ROOT/<store folder>/<item>/..., the last such store folder in the
// path followed by a store item's name.
//
// The program replaces the wrapper (exec): it has the wrapper's pid, its
// signals and its exit status, with nothing in between.
//
// When user namespaces are unavailable it fails with exit status 127 and
// a message naming the reason: /proc/sys/user/max_user_namespaces being
// 0, Debian's kernel.unprivileged_userns_clone, Ubuntu's AppArmor
// restriction, or the errno of unshare or mount.
//
// The Go runtime's defaults that cost time for nothing here are off (the
// go:debug lines above): GOMAXPROCS from the cgroup's CPU limit (go1.26
// still reads the limit once at start) and its updates.
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

func main() {
	if entryRan == 0 {
		fail("", "built without its entry point (go build -ldflags=-E=main.entry)")
	}
	t, err := area.Parse(block[area.MagicLen:])
	if err != nil {
		fail("", "this is the wrapper itself, not a wrapped program: "+err.Error())
	}
	if entryDirect != 0 {
		execProgram(t.Program)
	}
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		fail(t.Program, err.Error())
	}
	root, ok := packRoot(exe, t.StoreDir)
	if !ok {
		fail(t.Program, "neither found at its store path nor is this wrapper ("+exe+") inside a store folder "+t.StoreDir)
	}
	if _, err := os.Stat(root + t.Program); err != nil {
		fail(t.Program, "not in the pack: "+err.Error())
	}
	if e := unshareErrno(); e != 0 {
		if why := disabled("/proc"); why != "" {
			fail(t.Program, why)
		}
		fail(t.Program, namespaceError("a user namespace (unshare)", e, "/proc"))
	}
	if err := enter(root, t.StoreDir); err != nil {
		fail(t.Program, namespaceError("the pack's root", err, "/proc"))
	}
	execProgram(t.Program)
}

// packRoot finds the folder a pack was unpacked in from exe, a file in it:
// exe is ROOT + storeDir + "/" + a store item's name [+ "/" ...], with the
// last such storeDir taken. It reports false when exe is not so placed.
func packRoot(exe, storeDir string) (string, bool) {
	for end := len(exe); ; {
		i := strings.LastIndex(exe[:end], storeDir+"/")
		if i < 0 {
			return "", false
		}
		name, _, _ := strings.Cut(exe[i+len(storeDir)+1:], "/")
		if itemName(name) {
			return exe[:i], true
		}
		end = i
	}
}

// itemName reports whether name looks like a store item's name: 32
// characters of Nix base32, a dash, a name.
func itemName(name string) bool {
	if len(name) < 34 || name[32] != '-' {
		return false
	}
	for _, c := range []byte(name[:32]) {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' && c != 'e' && c != 'o' && c != 'u' && c != 't') {
			return false
		}
	}
	return true
}

// execProgram replaces the wrapper with program, argv[0] kept.
func execProgram(program string) {
	restoreAffinity()
	err := syscall.Exec(program, os.Args, os.Environ())
	fail(program, "exec: "+err.Error())
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
