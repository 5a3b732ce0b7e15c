//go:build linux

package main

import (
	"os"
	"runtime"
	"strings"
	"syscall"
	"unsafe"
)

// The child runs between clone and exec, where a forked copy of a Go
// program may make system calls and nothing else: no allocation, no
// stack growth, no call into the runtime but those made for this
// (package syscall's fork hooks). So the wrapper prepares, before clone,
// the whole of the child's work as a list of system calls with their
// arguments (a script), and the child runs through it in a loop of raw
// system calls. A call that must not fail sends its index and errno to
// the parent through a close-on-exec pipe, which the parent turns into a
// message; a successful exec closes the pipe with nothing in it.
//
// This keeps the wrapper to one Go process: the kernel refuses a new
// user namespace to a multi-threaded caller (unshare, setns), which a Go
// program always is, but clone gives one to the single-threaded child,
// which then writes its own uid and gid maps (as `unshare -r` does),
// builds the pack's root and execs the program. Starting a second Go
// program to do that work cost more than everything else the wrapper
// does together.

// call is one system call of the child's script.
type call struct {
	trap uintptr
	args [6]uintptr
	// savesFD keeps the call's result, an fd, for the next calls with
	// fromFD, which take it as args[0].
	savesFD, fromFD bool
	// fatal makes a failure end the child with a report to the parent.
	fatal bool
	// skipOK and skipFailed are the number of calls skipped after a
	// success or a failure that is not fatal.
	skipOK, skipFailed int
	// what names the step for the parent's message, with path.
	what, path string
}

// trapRestoreSignals is the pseudo call that resets the signal handlers
// and mask for exec (package syscall's runtime_AfterForkInChild).
const trapRestoreSignals = ^uintptr(0)

// trapParentAlive is the pseudo call that ends the child when its parent
// is no longer the wrapper (it died before the death signal was set).
const trapParentAlive = ^uintptr(1)

// script is the child's work and the memory its calls point into, which
// must stay reachable until the child has execed.
type script struct {
	calls []call
	keep  [][]byte
	ptrs  [][]*byte
}

// str keeps s as a NUL-terminated string and returns its address.
func (s *script) str(v string) uintptr {
	b := make([]byte, len(v)+1)
	copy(b, v)
	s.keep = append(s.keep, b)
	return uintptr(unsafe.Pointer(&b[0]))
}

// strs keeps vs as a NULL-terminated array of strings (argv, envp).
func (s *script) strs(vs []string) uintptr {
	p := make([]*byte, len(vs)+1)
	for i, v := range vs {
		b := make([]byte, len(v)+1)
		copy(b, v)
		s.keep = append(s.keep, b)
		p[i] = &b[0]
	}
	s.ptrs = append(s.ptrs, p)
	return uintptr(unsafe.Pointer(&p[0]))
}

// add appends a call and returns its index.
func (s *script) add(c call) int {
	s.calls = append(s.calls, c)
	return len(s.calls) - 1
}

// atFDCWD is AT_FDCWD as a system call argument.
const atFDCWD = ^uintptr(99) // -100

// writeFile adds the calls that write data into the existing file path;
// a failure to open is fatal unless optional, which skips the write.
func (s *script) writeFile(path, data string, optional bool) {
	open := call{trap: syscall.SYS_OPENAT, args: [6]uintptr{atFDCWD, s.str(path), syscall.O_WRONLY | syscall.O_CLOEXEC},
		savesFD: true, fatal: !optional, skipFailed: 2, what: "opening", path: path}
	s.add(open)
	d := s.str(data)
	s.add(call{trap: syscall.SYS_WRITE, args: [6]uintptr{0, d, uintptr(len(data))}, fromFD: true, fatal: true, what: "writing " + strings.TrimSpace(data) + " to", path: path})
	s.add(call{trap: syscall.SYS_CLOSE, fromFD: true})
}

// mount adds a mount call.
func (s *script) mount(src, target, fstype string, flags uintptr, data string) call {
	c := call{trap: syscall.SYS_MOUNT, args: [6]uintptr{s.str(src), s.str(target), 0, flags, 0}}
	if fstype != "" {
		c.args[2] = s.str(fstype)
	}
	if data != "" {
		c.args[4] = s.str(data)
	}
	return c
}

// childScript is the child's work for running program from the pack
// unpacked at root, whose store folder is storeDir: take the caller's uid
// and gid in the new user namespace, make a tmpfs the root (pivot_root),
// mirror the host's root in it (every top-level entry of hostRoot, but
// the store folder's top-level folder and oldRoot), bind the pack's store
// at storeDir, detach the host's root, return to cwd and exec.
func childScript(root, storeDir, cwd string, hostRoot []os.DirEntry, links map[string]string, program string, argv, env []string) *script {
	s := &script{}
	s.add(call{trap: syscall.SYS_PRCTL, args: [6]uintptr{syscall.PR_SET_PDEATHSIG, uintptr(syscall.SIGKILL)}})
	s.add(call{trap: trapParentAlive, args: [6]uintptr{uintptr(os.Getpid())}})

	s.writeFile("/proc/self/uid_map", idMap(os.Geteuid()), false)
	s.writeFile("/proc/self/setgroups", "deny", true) // absent before Linux 3.19
	s.writeFile("/proc/self/gid_map", idMap(os.Getegid()), false)

	step := func(c call, what, path string) {
		c.fatal, c.what, c.path = true, what, path
		s.add(c)
	}
	step(s.mount("none", "/", "", syscall.MS_REC|syscall.MS_PRIVATE, ""), "making / private", "/")
	// Any folder will do as the tmpfs's mount point; pivot_root moves the
	// tmpfs to / and uncovers the folder under it.
	step(s.mount("tmpfs", root, "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV, "mode=0755"), "mounting a tmpfs", root)
	step(call{trap: syscall.SYS_MKDIRAT, args: [6]uintptr{atFDCWD, s.str(root + oldRoot), 0o700}}, "making", root+oldRoot)
	step(call{trap: syscall.SYS_PIVOT_ROOT, args: [6]uintptr{s.str(root), s.str(root + oldRoot)}}, "pivot_root", root)
	step(call{trap: syscall.SYS_CHDIR, args: [6]uintptr{s.str("/")}}, "entering", "/")

	top, _, _ := strings.Cut(storeDir[1:], "/")
	for _, e := range hostRoot {
		name := e.Name()
		if name == top || "/"+name == oldRoot {
			continue
		}
		s.mirror(oldRoot+"/"+name, "/"+name, e.Type(), links[name])
	}
	for i := 1; i <= len(storeDir); i++ {
		if i == len(storeDir) || storeDir[i] == '/' {
			s.add(call{trap: syscall.SYS_MKDIRAT, args: [6]uintptr{atFDCWD, s.str(storeDir[:i]), 0o755}})
		}
	}
	step(s.mount(oldRoot+root+storeDir, storeDir, "", syscall.MS_BIND|syscall.MS_REC, ""), "binding the pack's store", root+storeDir)
	step(call{trap: syscall.SYS_UMOUNT2, args: [6]uintptr{s.str(oldRoot), syscall.MNT_DETACH}}, "detaching the host's root", oldRoot)
	step(call{trap: syscall.SYS_UNLINKAT, args: [6]uintptr{atFDCWD, s.str(oldRoot), unlinkDir}}, "removing", oldRoot)
	// Nothing more is written to the new root itself.
	s.add(s.mount("none", "/", "", syscall.MS_REMOUNT|syscall.MS_BIND|syscall.MS_RDONLY, ""))
	s.add(call{trap: syscall.SYS_CHDIR, args: [6]uintptr{s.str(cwd)}, skipOK: 1})
	s.add(call{trap: syscall.SYS_CHDIR, args: [6]uintptr{s.str("/")}})

	s.add(call{trap: trapRestoreSignals})
	step(call{trap: syscall.SYS_EXECVE, args: [6]uintptr{s.str(program), s.strs(argv), s.strs(env)}}, "exec", program)
	return s
}

// unlinkDir is AT_REMOVEDIR.
const unlinkDir = 0x200

// idMap is a uid_map or gid_map line mapping id to itself.
func idMap(id int) string {
	return itoa(id) + " " + itoa(id) + " 1\n"
}

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

// mirror adds the calls that make dst stand for the host's src: a
// symlink with its target, or a folder or file with src bound on it. An
// entry that cannot be bound is left out, as the host's user could not
// reach it either.
func (s *script) mirror(src, dst string, typ os.FileMode, target string) {
	d := s.str(dst)
	switch {
	case typ&os.ModeSymlink != 0:
		if target != "" {
			s.add(call{trap: syscall.SYS_SYMLINKAT, args: [6]uintptr{s.str(target), atFDCWD, d}})
		}
		return
	case typ.IsDir():
		s.add(call{trap: syscall.SYS_MKDIRAT, args: [6]uintptr{atFDCWD, d, 0o755}, skipFailed: 2})
	default:
		s.add(call{trap: syscall.SYS_MKNODAT, args: [6]uintptr{atFDCWD, d, syscall.S_IFREG | 0o644}, skipFailed: 2})
	}
	bind := s.mount(src, dst, "", syscall.MS_BIND|syscall.MS_REC, "")
	bind.skipOK = 1
	s.add(bind)
	var undo uintptr
	if typ.IsDir() {
		undo = unlinkDir
	}
	s.add(call{trap: syscall.SYS_UNLINKAT, args: [6]uintptr{atFDCWD, d, undo}})
}

// childFailure is what a failed child reports: the index of the call and
// its errno.
type childFailure [2]uint32

// startChild clones a child in new user and mount namespaces that runs
// s. It returns the child's pid once the child has execed, or the call
// that failed with its errno.
func startChild(s *script) (int, *call, error) {
	var p [2]int
	if err := syscall.Pipe2(p[:], syscall.O_CLOEXEC); err != nil {
		return 0, nil, err
	}
	report := new(childFailure)
	pid, errno := forkChild(syscall.CLONE_NEWUSER|syscall.CLONE_NEWNS, s.calls, report, uintptr(p[1]))
	runtime.KeepAlive(s)
	syscall.Close(p[1])
	defer syscall.Close(p[0])
	if errno != 0 {
		return 0, nil, errno
	}
	var got childFailure
	for {
		n, err := syscall.Read(p[0], (*[8]byte)(unsafe.Pointer(&got))[:])
		if err == syscall.EINTR {
			continue
		}
		if err != nil || n != 8 {
			return pid, nil, nil // closed by exec
		}
		var ws syscall.WaitStatus
		for {
			if _, err := syscall.Wait4(pid, &ws, 0, nil); err != syscall.EINTR {
				break
			}
		}
		i := int(got[0])
		if i >= len(s.calls) {
			return 0, nil, syscall.EINVAL
		}
		return 0, &s.calls[i], syscall.Errno(got[1])
	}
}

// forkChild clones the child with flags and runs calls in it; in the
// parent it returns the child's pid. Between package syscall's fork
// hooks nothing may grow the stack: every function it calls is nosplit.
//
//go:nosplit
//go:norace
func forkChild(flags uintptr, calls []call, report *childFailure, fd uintptr) (int, syscall.Errno) {
	runtime_BeforeFork()
	pid, errno := rawClone(flags | uintptr(syscall.SIGCHLD))
	if errno != 0 || pid != 0 {
		runtime_AfterFork()
		return int(pid), errno
	}
	runScript(calls, report, fd)
	return 0, 0
}

// rawClone forks with flags: clone(2) with no new stack, whose first two
// arguments are swapped on s390x.
//
//go:nosplit
func rawClone(flags uintptr) (uintptr, syscall.Errno) {
	var r uintptr
	var e syscall.Errno
	if runtime.GOARCH == "s390x" {
		r, _, e = syscall.RawSyscall6(syscall.SYS_CLONE, 0, flags, 0, 0, 0, 0)
	} else {
		r, _, e = syscall.RawSyscall6(syscall.SYS_CLONE, flags, 0, 0, 0, 0, 0)
	}
	return r, e
}

// runScript runs the child's calls; it never returns.
//
//go:nosplit
//go:norace
func runScript(calls []call, report *childFailure, fd uintptr) {
	var fd0 uintptr
	for i := 0; i < len(calls); i++ {
		c := &calls[i]
		switch c.trap {
		case trapRestoreSignals:
			runtime_AfterForkInChild()
			continue
		case trapParentAlive:
			if ppid, _, _ := syscall.RawSyscall(syscall.SYS_GETPPID, 0, 0, 0); ppid != c.args[0] {
				syscall.RawSyscall(syscall.SYS_EXIT_GROUP, exitFail, 0, 0)
			}
			continue
		}
		a0 := c.args[0]
		if c.fromFD {
			a0 = fd0
		}
		r, _, e := syscall.RawSyscall6(c.trap, a0, c.args[1], c.args[2], c.args[3], c.args[4], c.args[5])
		if e == 0 {
			if c.savesFD {
				fd0 = r
			}
			i += c.skipOK
			continue
		}
		if c.fatal {
			report[0], report[1] = uint32(i), uint32(e)
			syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(report)), 8)
			syscall.RawSyscall(syscall.SYS_EXIT_GROUP, exitFail, 0, 0)
		}
		i += c.skipFailed
	}
	syscall.RawSyscall(syscall.SYS_EXIT_GROUP, exitFail, 0, 0)
}

// Package syscall's fork hooks, which the runtime provides for it (and
// keeps for the programs that link them: go.dev/issue/67401): block
// signals and guard the stack before clone, undo that in the parent, and
// reset the signal handlers and mask in the child before exec.

//go:linkname runtime_BeforeFork syscall.runtime_BeforeFork
func runtime_BeforeFork()

//go:linkname runtime_AfterFork syscall.runtime_AfterFork
func runtime_AfterFork()

//go:linkname runtime_AfterForkInChild syscall.runtime_AfterForkInChild
func runtime_AfterForkInChild()
