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
//   - Otherwise it starts a copy of itself (stage 2, marked by the
//     STOREPACK_RELOCATE_STAGE variable) in a new user and mount namespace
//     where the caller's uid and gid map to themselves and setgroups is
//     denied. Stage 2 mounts a tmpfs, makes it the root (pivot_root), binds
//     every top-level entry of the host's root into it (but the store
//     folder's top-level folder) and ROOT/<store folder> at the store
//     folder, detaches the host's root, returns to the working folder,
//     drops its capabilities and execs the program with the same
//     arguments (argv[0] kept) and environment (less its marker).
//
// Two processes are needed because the Go runtime is multi-threaded before
// main runs and the kernel refuses a multi-threaded caller a new user
// namespace (unshare and setns both): the namespaces are made by clone for
// the child. The first process stays as a relay: it forwards the signals
// it is sent (SIGINT, SIGQUIT and SIGHUP only when its process group is
// not the terminal's foreground group, since the terminal sends those to
// the whole group, the program included; job control stops are left to
// the terminal) and exits with the program's exit status, or dies of the
// signal that killed it (without a core dump of its own).
//
// When user namespaces are unavailable it fails with exit status 127 and
// a message naming the reason: /proc/sys/user/max_user_namespaces being
// 0, Debian's kernel.unprivileged_userns_clone, Ubuntu's AppArmor
// restriction, or the errno of clone or mount.
package main

import (
	"errors"
	"io/fs"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"github.com/storepack/storepack/export/relocate/trailer"
)

// stageEnv marks the copy of the wrapper that runs inside the namespaces.
const stageEnv = "STOREPACK_RELOCATE_STAGE"

// oldRoot is where stage 2 keeps the host's root while it builds the new
// one; the host's entry of that name, if any, is not mirrored.
const oldRoot = "/.storepack-host-root"

// capSysAdmin is CAP_SYS_ADMIN, which stage 2 keeps across its exec as an
// ambient capability to mount in its user namespace.
const capSysAdmin = 21

// exitFail is the exit status of a wrapper that could not run its program.
const exitFail = 127

func main() {
	t, exe, err := self()
	if err != nil {
		fail("", err.Error())
	}
	root, ok := packRoot(exe, t.StoreDir)
	if os.Getenv(stageEnv) == "2" {
		// The thread that drops capabilities must be the one that execs.
		runtime.LockOSThread()
		if !ok {
			fail(t.Program, exe+" is not inside a store folder "+t.StoreDir)
		}
		stage2(t, root)
	}
	if _, err := os.Stat(t.Program); err == nil {
		execProgram(t.Program, environ(false))
	}
	if !ok {
		fail(t.Program, "neither found at its store path nor is this wrapper ("+exe+") inside a store folder "+t.StoreDir)
	}
	if _, err := os.Stat(root + t.Program); err != nil {
		fail(t.Program, "not in the pack: "+err.Error())
	}
	if why := disabled("/proc"); why != "" {
		fail(t.Program, why)
	}
	relay(t.Program)
}

// self reads the wrapper's trailer and resolved location.
func self() (trailer.Trailer, string, error) {
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		return trailer.Trailer{}, "", err
	}
	f, err := os.Open("/proc/self/exe")
	if err != nil {
		return trailer.Trailer{}, "", err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return trailer.Trailer{}, "", err
	}
	t, err := trailer.Read(f, fi.Size())
	if err != nil {
		return trailer.Trailer{}, "", errors.New(exe + ": " + err.Error())
	}
	return t, exe, nil
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

// relay runs stage 2 in new user and mount namespaces, forwards signals
// to it and ends as it ends.
func relay(program string) {
	exe := "/proc/self/exe"
	uid, gid := os.Getuid(), os.Getgid()
	// Pdeathsig is sent when the thread that forked exits: Go ends no
	// thread but those of goroutines that exit locked to theirs.
	pid, err := syscall.ForkExec(exe, os.Args, &syscall.ProcAttr{
		Env:   append(environ(false), stageEnv+"=2"),
		Files: []uintptr{0, 1, 2},
		Sys: &syscall.SysProcAttr{
			Cloneflags:                 syscall.CLONE_NEWUSER | syscall.CLONE_NEWNS,
			UidMappings:                []syscall.SysProcIDMap{{ContainerID: uid, HostID: uid, Size: 1}},
			GidMappings:                []syscall.SysProcIDMap{{ContainerID: gid, HostID: gid, Size: 1}},
			GidMappingsEnableSetgroups: false,
			AmbientCaps:                []uintptr{capSysAdmin},
			Pdeathsig:                  syscall.SIGKILL,
		},
	})
	if err != nil {
		fail(program, namespaceError("a user namespace (clone)", err, "/proc"))
	}
	// Enabling each signal is a round trip between two threads of the Go
	// runtime: it is done while stage 2 starts. A signal that comes before
	// kills the relay, and Pdeathsig the program.
	sigs := make(chan os.Signal, 32)
	signal.Notify(sigs, forwarded()...)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGQUIT, syscall.SIGHUP)
	go func() {
		for s := range sigs {
			sig := s.(syscall.Signal)
			if (sig == syscall.SIGINT || sig == syscall.SIGQUIT || sig == syscall.SIGHUP) && foreground() {
				continue
			}
			syscall.Kill(pid, sig)
		}
	}()
	var ws syscall.WaitStatus
	for {
		_, err := syscall.Wait4(pid, &ws, 0, nil)
		if err == nil {
			break
		}
		if err != syscall.EINTR {
			fail(program, "waiting for it: "+err.Error())
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

// stage2 runs inside the new namespaces: it builds the new root and
// execs the program in it.
func stage2(t trailer.Trailer, root string) {
	cwd, err := os.Getwd()
	if err != nil {
		cwd = "/"
	}
	if err := newRoot(root, t.StoreDir); err != nil {
		fail(t.Program, namespaceError("the pack's root", err, "/proc"))
	}
	if err := syscall.Chdir(cwd); err != nil {
		syscall.Chdir("/")
	}
	// Drop every capability of this thread, which execs: the ambient
	// set follows the permitted set down.
	hdr := struct{ version, pid uint32 }{0x20080522, 0} // _LINUX_CAPABILITY_VERSION_3
	var data [6]uint32
	if _, _, e := syscall.RawSyscall(syscall.SYS_CAPSET, uintptr(unsafe.Pointer(&hdr)), uintptr(unsafe.Pointer(&data)), 0); e != 0 {
		fail(t.Program, "dropping capabilities: "+e.Error())
	}
	execProgram(t.Program, environ(true))
}

// newRoot makes a tmpfs the root, mirrors the host's root into it but for
// the store folder's top-level folder, and binds root+storeDir at
// storeDir.
func newRoot(root, storeDir string) error {
	if err := syscall.Mount("none", "/", "", syscall.MS_REC|syscall.MS_PRIVATE, ""); err != nil {
		return pathError("making / private", "/", err)
	}
	// Any folder will do as the tmpfs's mount point; pivot_root moves the
	// tmpfs to / and uncovers the folder under it.
	base := root
	if err := syscall.Mount("tmpfs", base, "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV, "mode=0755"); err != nil {
		return pathError("mounting a tmpfs", base, err)
	}
	if err := os.Mkdir(base+oldRoot, 0o700); err != nil {
		return err
	}
	if err := syscall.PivotRoot(base, base+oldRoot); err != nil {
		return pathError("pivot_root", base, err)
	}
	if err := syscall.Chdir("/"); err != nil {
		return err
	}
	top, _, _ := strings.Cut(storeDir[1:], "/")
	entries, err := os.ReadDir(oldRoot)
	if err != nil {
		return err
	}
	for _, e := range entries {
		name := e.Name()
		if name == top || "/"+name == oldRoot {
			continue
		}
		mirror(oldRoot+"/"+name, "/"+name, e.Type())
	}
	if err := os.MkdirAll(storeDir, 0o755); err != nil {
		return err
	}
	if err := syscall.Mount(oldRoot+root+storeDir, storeDir, "", syscall.MS_BIND|syscall.MS_REC, ""); err != nil {
		return pathError("binding the pack's store", root+storeDir, err)
	}
	if err := syscall.Unmount(oldRoot, syscall.MNT_DETACH); err != nil {
		return pathError("detaching the host's root", oldRoot, err)
	}
	if err := syscall.Rmdir(oldRoot); err != nil {
		return err
	}
	// Nothing more is written to the new root itself.
	syscall.Mount("none", "/", "", syscall.MS_REMOUNT|syscall.MS_BIND|syscall.MS_RDONLY, "")
	return nil
}

// mirror makes dst stand for the host's src: a symlink with its target, or
// a folder or file with src bound on it. An entry that cannot be bound is
// left out, as the host's user could not reach it either.
func mirror(src, dst string, typ fs.FileMode) {
	if typ&fs.ModeSymlink != 0 {
		if target, err := os.Readlink(src); err == nil {
			os.Symlink(target, dst)
		}
		return
	}
	if typ.IsDir() {
		if os.Mkdir(dst, 0o755) != nil {
			return
		}
	} else {
		fd, err := syscall.Open(dst, syscall.O_CREAT|syscall.O_WRONLY|syscall.O_CLOEXEC, 0o644)
		if err != nil {
			return
		}
		syscall.Close(fd)
	}
	if syscall.Mount(src, dst, "", syscall.MS_BIND|syscall.MS_REC, "") != nil {
		if typ.IsDir() {
			syscall.Rmdir(dst)
		} else {
			syscall.Unlink(dst)
		}
	}
}

// environ is the process's environment less the stage marker when
// strip is set.
func environ(strip bool) []string {
	env := os.Environ()
	if !strip {
		return env
	}
	out := env[:0]
	for _, kv := range env {
		if !strings.HasPrefix(kv, stageEnv+"=") {
			out = append(out, kv)
		}
	}
	return out
}

// execProgram replaces the wrapper with program, argv[0] kept.
func execProgram(program string, env []string) {
	err := syscall.Exec(program, os.Args, env)
	fail(program, "exec: "+err.Error())
}

// pathError names what failed on which path, and the errno.
func pathError(what, path string, err error) error {
	return errors.New(what + " " + path + ": " + errnoText(err))
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
