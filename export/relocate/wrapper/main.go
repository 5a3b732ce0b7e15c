//go:build linux

// Command wrapper is the relocatable wrapper: storepack puts a copy of it,
// followed by a trailer naming a store folder and a program's store path
// (package export/relocate/trailer), in place of each program of a
// relocatable pack. Run from wherever the pack was unpacked, it makes the
// pack's store appear at the store folder and runs the program there.
//
// It finds the pack's root from its own location: /proc/self/exe is
// ROOT/<store folder>/<item>/..., the last such store folder in the path
// followed by a store item's name. Then:
//
//   - When the program exists at its store path on this machine (the pack
//     was unpacked at /, or the machine has the items), it execs the
//     program there: no namespaces.
//   - Otherwise it clones a child in a new user and mount namespace
//     (child.go) that maps the caller's uid and gid to themselves, with
//     setgroups denied, mounts a tmpfs, makes it the root (pivot_root),
//     binds every top-level entry of the host's root into it (but the
//     store folder's top-level folder) and ROOT/<store folder> at the
//     store folder, detaches the host's root, returns to the working
//     folder and execs the program with the same arguments (argv[0]
//     kept) and environment.
//
// The wrapper stays as a relay: it forwards the signals it is sent
// (SIGINT, SIGQUIT and SIGHUP only when its process group is not the
// terminal's foreground group, since the terminal sends those to the
// whole group, the program included; job control stops are left to the
// terminal) and exits with the program's exit status, or dies of the
// signal that killed it (without a core dump of its own).
//
// When user namespaces are unavailable it fails with exit status 127 and
// a message naming the reason: /proc/sys/user/max_user_namespaces being
// 0, Debian's kernel.unprivileged_userns_clone, Ubuntu's AppArmor
// restriction, or the errno of clone or mount.
package main

import (
	"errors"
	"io"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"github.com/storepack/storepack/export/relocate/trailer"
)

// oldRoot is where the child keeps the host's root while it builds the
// new one; the host's entry of that name, if any, is not mirrored.
const oldRoot = "/.storepack-host-root"

// exitFail is the exit status of a wrapper that could not run its program.
const exitFail = 127

func main() {
	t, exe, err := self()
	if err != nil {
		fail("", err.Error())
	}
	if _, err := os.Stat(t.Program); err == nil {
		execProgram(t.Program)
	}
	root, ok := packRoot(exe, t.StoreDir)
	if !ok {
		fail(t.Program, "neither found at its store path nor is this wrapper ("+exe+") inside a store folder "+t.StoreDir)
	}
	if _, err := os.Stat(root + t.Program); err != nil {
		fail(t.Program, "not in the pack: "+err.Error())
	}
	if why := disabled("/proc"); why != "" {
		fail(t.Program, why)
	}
	relay(t, root)
}

// self reads the wrapper's trailer and resolved location.
func self() (trailer.Trailer, string, error) {
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		return trailer.Trailer{}, "", err
	}
	// A plain descriptor: os.File would start the runtime's poller.
	fd, err := syscall.Open("/proc/self/exe", syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return trailer.Trailer{}, "", errors.New("/proc/self/exe: " + err.Error())
	}
	defer syscall.Close(fd)
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		return trailer.Trailer{}, "", errors.New(exe + ": " + err.Error())
	}
	t, err := trailer.Read(fdReader(fd), st.Size)
	if err != nil {
		return trailer.Trailer{}, "", errors.New(exe + ": " + err.Error())
	}
	return t, exe, nil
}

// fdReader reads a file descriptor at offsets.
type fdReader int

// ReadAt implements io.ReaderAt with pread.
func (fd fdReader) ReadAt(p []byte, off int64) (int, error) {
	n, err := syscall.Pread(int(fd), p, off)
	if n < 0 {
		n = 0
	}
	if err == nil && n < len(p) {
		err = io.ErrUnexpectedEOF
	}
	return n, err
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

// relay starts the program in new user and mount namespaces, forwards
// signals to it and ends as it ends.
func relay(t trailer.Trailer, root string) {
	// The child's death signal comes when the thread that cloned it
	// ends: keep it.
	runtime.LockOSThread()
	cwd, err := os.Getwd()
	if err != nil {
		cwd = "/"
	}
	entries, err := os.ReadDir("/")
	if err != nil {
		fail(t.Program, "reading /: "+err.Error())
	}
	links := map[string]string{}
	for _, e := range entries {
		if e.Type()&os.ModeSymlink != 0 {
			links[e.Name()], _ = os.Readlink("/" + e.Name())
		}
	}
	// The signals are caught before the program starts, which may be
	// sent one as soon as it runs; they wait for its pid.
	sigs := make(chan os.Signal, 32)
	signal.Notify(sigs, forwarded()...)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGQUIT, syscall.SIGHUP)
	started := make(chan int, 1)
	go func() {
		pid := <-started
		for s := range sigs {
			sig := s.(syscall.Signal)
			if (sig == syscall.SIGINT || sig == syscall.SIGQUIT || sig == syscall.SIGHUP) && foreground() {
				continue
			}
			syscall.Kill(pid, sig)
		}
	}()
	s := childScript(root, t.StoreDir, cwd, entries, links, t.Program, os.Args, os.Environ())
	pid, failed, err := startChild(s)
	switch {
	case err != nil && failed == nil:
		fail(t.Program, namespaceError("a user namespace (clone)", err, "/proc"))
	case err != nil && failed.trap == syscall.SYS_EXECVE:
		fail(t.Program, "exec: "+errnoText(err))
	case err != nil:
		fail(t.Program, namespaceError("the pack's root", errors.New(failed.what+" "+failed.path+": "+errnoText(err)), "/proc"))
	}
	started <- pid
	var ws syscall.WaitStatus
	for {
		_, err := syscall.Wait4(pid, &ws, 0, nil)
		if err == nil {
			break
		}
		if err != syscall.EINTR {
			fail(t.Program, "waiting for it: "+err.Error())
		}
	}
	if ws.Signaled() {
		die(ws.Signal())
	}
	os.Exit(ws.ExitStatus())
}

// forwarded lists the signals the relay passes on as they come: all but
// those the kernel or the terminal deal with (SIGKILL, SIGSTOP, job
// control, SIGCHLD, SIGWINCH, SIGURG, which the Go runtime uses) and the
// terminal's (see relay).
func forwarded() []os.Signal {
	var out []os.Signal
	for s := syscall.Signal(1); s <= 64; s++ {
		switch s {
		case syscall.SIGKILL, syscall.SIGSTOP, syscall.SIGTSTP, syscall.SIGTTIN, syscall.SIGTTOU,
			syscall.SIGCONT, syscall.SIGCHLD, syscall.SIGWINCH, syscall.SIGURG,
			syscall.SIGINT, syscall.SIGQUIT, syscall.SIGHUP:
			continue
		}
		if s >= 32 && s <= 33 { // reserved by C libraries; never sent to a Go program
			continue
		}
		out = append(out, s)
	}
	return out
}

// foreground reports whether this process's group is the foreground
// group of the terminal on standard input, which sends its signals to
// the whole group.
func foreground() bool {
	var pgrp int32
	if _, _, e := syscall.RawSyscall(syscall.SYS_IOCTL, 0, syscall.TIOCGPGRP, uintptr(unsafe.Pointer(&pgrp))); e != 0 {
		return false
	}
	return int(pgrp) == syscall.Getpgrp()
}

// die ends the relay by the signal sig, as the program ended: the
// default action restored and no core dump.
func die(sig syscall.Signal) {
	signal.Reset()
	syscall.Setrlimit(syscall.RLIMIT_CORE, &syscall.Rlimit{})
	var act [8]uint64 // a zeroed struct sigaction: SIG_DFL, no flags, empty mask
	setSize := uintptr(8)
	if strings.HasPrefix(runtime.GOARCH, "mips") {
		setSize = 16
	}
	syscall.RawSyscall6(syscall.SYS_RT_SIGACTION, uintptr(sig), uintptr(unsafe.Pointer(&act)), 0, setSize, 0, 0)
	syscall.Tgkill(syscall.Getpid(), syscall.Gettid(), sig)
	time.Sleep(100 * time.Millisecond)
	os.Exit(128 + int(sig))
}

// execProgram replaces the wrapper with program, argv[0] kept.
func execProgram(program string) {
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

// errnoNames names the errnos clone, mount and pivot_root give.
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
