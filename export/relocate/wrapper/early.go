//go:build linux

package main

import (
	"syscall"
	"unsafe"
)

// early runs before the Go runtime (see entry.go), so it and everything
// it calls are //go:nosplit and keep to what needs no runtime: no heap
// allocation, no maps, no interfaces, no defer, no string concatenation;
// system calls through syscall.RawSyscall6, buffers in package
// variables. A function without the mark would check its stack against
// a goroutine that does not exist yet and crash;
// TestEarlyNeedsNoRuntime checks the compiled code for such calls.

// Steps of early that can fail, recorded in failedStep.
const (
	stepNone    = iota
	stepExec    // exec of the program
	stepSelf    // reading /proc/self/exe
	stepPlace   // the wrapper is not inside a store folder
	stepMissing // the program is not in the pack
	stepUnshare // unsharing the user and mount namespaces
	stepOpen    // the steps that make the pack's root
	stepWrite
	stepPrivate
	stepTmpfs
	stepMkdir
	stepPivot
	stepEnter
	stepList
	stepBind
	stepDetach
	stepRemove
)

// pathMax bounds the paths early builds: the pack's root and the store
// folder are each at most PATH_MAX long.
const pathMax = 3 * 4096

// oldRoot is where early keeps the host's root while it builds the new
// one; the host's entry of that name, if any, is not mirrored.
const oldRoot = "/.storepack-host-root"

// Flags of system calls that package syscall does not name on every
// architecture.
const (
	atFDCWD    = ^uintptr(99) // AT_FDCWD, -100
	atRemove   = 0x200        // AT_REMOVEDIR
	mntDetach  = 2            // MNT_DETACH
	unshareNS  = 0x10000000 | 0x20000
	dtUnknown  = 0
	dtDir      = 4
	dtLink     = 10
	modeFile   = 0o100644 // S_IFREG | 0644
	enotdir    = uintptr(syscall.ENOTDIR)
	enametoolo = uintptr(syscall.ENAMETOOLONG)
)

// pathBuf is a NUL-terminated path built in place.
type pathBuf struct {
	n int
	b [pathMax]byte
}

// Buffers of early: package variables, which need no allocation.
var (
	self, inPack, rootDir, oldDir, source, dst, src, prefix pathBuf
	cwd, link                                               pathBuf
	dents                                                   [16 << 10]byte
	idLine                                                  [64]byte
)

// set makes p the concatenation of parts; false if it does not fit.
//
//go:nosplit
func (p *pathBuf) set(a, b, c string) bool {
	if len(a)+len(b)+len(c) >= len(p.b) {
		p.n = 0
		p.b[0] = 0
		return false
	}
	n := copy(p.b[:], a)
	n += copy(p.b[n:], b)
	n += copy(p.b[n:], c)
	p.b[n] = 0
	p.n = n
	return true
}

// ptr is p as a system call argument.
//
//go:nosplit
func (p *pathBuf) ptr() uintptr { return uintptr(unsafe.Pointer(&p.b[0])) }

// str is p as a string, sharing its bytes.
//
//go:nosplit
func (p *pathBuf) str() string { return unsafe.String(&p.b[0], p.n) }

// cstring is the NUL-terminated string at b's start, sharing its bytes.
//
//go:nosplit
func cstring(b []byte) string {
	for i := range len(b) {
		if b[i] == 0 {
			return unsafe.String(&b[0], i)
		}
	}
	return ""
}

// strPtr is s, followed by a NUL in memory, as a system call argument.
//
//go:nosplit
func strPtr(s string) uintptr { return uintptr(unsafe.Pointer(unsafe.StringData(s))) }

//go:nosplit
func sys(trap, a0, a1, a2, a3, a4 uintptr) (uintptr, uintptr) {
	r, _, e := syscall.RawSyscall6(trap, a0, a1, a2, a3, a4, 0)
	return r, uintptr(e)
}

// record records that step failed with errno on path.
//
//go:nosplit
func record(step, errno uintptr, path string) {
	failedStep, failedErrno = step, errno
	n := copy(failedPath[:len(failedPath)-1], path)
	failedPath[n] = 0
}

// early does the wrapper's job: see entry.go and main.go. It returns
// only when a step failed, recorded by fail, or when the block holds no
// program (the wrapper itself, which main tells).
//
//go:nosplit
func early() {
	earlyRan = 1
	data := block[16:]
	program := cstring(data)
	if len(program) == 0 || program[0] != '/' || len(program)+1 >= len(data) {
		return
	}
	storeDir := cstring(data[len(program)+1:])
	if len(storeDir) < 2 || storeDir[0] != '/' {
		return
	}
	argv := uintptr(unsafe.Add(entrySP, unsafe.Sizeof(uintptr(0))))
	argc := *(*uintptr)(entrySP)
	envp := argv + (argc+1)*unsafe.Sizeof(uintptr(0))

	// The program at its store path: no namespace.
	if _, e := sys(syscall.SYS_FACCESSAT, atFDCWD, strPtr(program), 0, 0, 0); e == 0 {
		_, e = sys(syscall.SYS_EXECVE, strPtr(program), argv, envp, 0, 0)
		record(stepExec, e, program)
		return
	}

	// The pack's root, from the wrapper's own location.
	n, e := sys(syscall.SYS_READLINKAT, atFDCWD, strPtr("/proc/self/exe\x00"), self.ptr(), uintptr(len(self.b)-1), 0)
	if e != 0 {
		record(stepSelf, e, "/proc/self/exe")
		return
	}
	self.n = int(n)
	self.b[n] = 0
	exe := self.str()
	end, ok := packRoot(exe, storeDir)
	if !ok {
		record(stepPlace, 0, exe)
		return
	}
	root := exe[:end]
	if !inPack.set(root, program, "") {
		record(stepMissing, enametoolo, root)
		return
	}
	if _, e := sys(syscall.SYS_FACCESSAT, atFDCWD, inPack.ptr(), 0, 0, 0); e != 0 {
		record(stepMissing, e, inPack.str())
		return
	}

	euid, _ := sys(sysGeteuid, 0, 0, 0, 0, 0)
	egid, _ := sys(sysGetegid, 0, 0, 0, 0, 0)
	if _, e := sys(syscall.SYS_UNSHARE, unshareNS, 0, 0, 0, 0); e != 0 {
		record(stepUnshare, e, "")
		return
	}
	if mapIDs(euid, egid) && pivot(root, storeDir) && mirrorRoot(storeDir) && bindStore(storeDir) {
		_, e := sys(syscall.SYS_EXECVE, strPtr(program), argv, envp, 0, 0)
		record(stepExec, e, program)
	}
}

// packRoot finds the end of the folder a pack was unpacked in from exe,
// a file in it: exe is ROOT + storeDir + "/" + a store item's name [+
// "/" ...], with the last such storeDir taken. It reports false when
// exe is not so placed.
//
//go:nosplit
func packRoot(exe, storeDir string) (int, bool) {
	for i := len(exe) - len(storeDir) - 1; i >= 0; i-- {
		if exe[i+len(storeDir)] != '/' || exe[i:i+len(storeDir)] != storeDir {
			continue
		}
		name := exe[i+len(storeDir)+1:]
		for j := range len(name) {
			if name[j] == '/' {
				name = name[:j]
				break
			}
		}
		if itemName(name) {
			return i, true
		}
	}
	return 0, false
}

// itemName reports whether name looks like a store item's name: 32
// characters of Nix base32, a dash, a name.
//
//go:nosplit
func itemName(name string) bool {
	if len(name) < 34 || name[32] != '-' {
		return false
	}
	for i := range 32 {
		c := name[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' && c != 'e' && c != 'o' && c != 'u' && c != 't') {
			return false
		}
	}
	return true
}

// The steps that make, in the user and mount namespaces early unshared,
// the root in which the pack unpacked at root has its store at storeDir:
// mapIDs maps the caller's uid and gid to themselves; pivot makes a
// tmpfs the root (pivot_root), keeping the host's at oldRoot; mirrorRoot
// mirrors the host's root in it (every top-level entry but the store
// folder's top-level folder and oldRoot); bindStore binds the pack's
// store at storeDir, detaches the host's root and returns to the working
// folder. Each reports false after recording the step that failed.

//go:nosplit
func mapIDs(euid, egid uintptr) bool {
	if !writeID("/proc/self/uid_map\x00", euid) {
		return false
	}
	// setgroups is absent before Linux 3.19.
	if fd, e := sys(syscall.SYS_OPENAT, atFDCWD, strPtr("/proc/self/setgroups\x00"), syscall.O_WRONLY|syscall.O_CLOEXEC, 0, 0); e == 0 {
		_, e = sys(syscall.SYS_WRITE, fd, strPtr("deny"), 4, 0, 0)
		sys(syscall.SYS_CLOSE, fd, 0, 0, 0, 0)
		if e != 0 {
			record(stepWrite, e, "/proc/self/setgroups")
			return false
		}
	} else if e != uintptr(syscall.ENOENT) {
		record(stepOpen, e, "/proc/self/setgroups")
		return false
	}
	return writeID("/proc/self/gid_map\x00", egid)
}

//go:nosplit
func pivot(root, storeDir string) bool {
	if n, e := sys(syscall.SYS_GETCWD, cwd.ptr(), uintptr(len(cwd.b)), 0, 0, 0); e == 0 && n > 1 && cwd.b[0] == '/' {
		cwd.n = int(n) - 1
	} else {
		cwd.set("/", "", "")
	}
	if _, e := sys(syscall.SYS_MOUNT, strPtr("none\x00"), strPtr("/\x00"), 0, syscall.MS_REC|syscall.MS_PRIVATE, 0); e != 0 {
		record(stepPrivate, e, "/")
		return false
	}
	// Any folder will do as the tmpfs's mount point; pivot_root moves the
	// tmpfs to / and uncovers the folder under it.
	if !rootDir.set(root, "", "") || !oldDir.set(root, oldRoot, "") || !source.set(oldRoot, root, storeDir) {
		record(stepTmpfs, enametoolo, root)
		return false
	}
	if _, e := sys(syscall.SYS_MOUNT, strPtr("tmpfs\x00"), rootDir.ptr(), strPtr("tmpfs\x00"), syscall.MS_NOSUID|syscall.MS_NODEV, strPtr("mode=0755\x00")); e != 0 {
		record(stepTmpfs, e, rootDir.str())
		return false
	}
	if _, e := sys(syscall.SYS_MKDIRAT, atFDCWD, oldDir.ptr(), 0o700, 0, 0); e != 0 {
		record(stepMkdir, e, oldDir.str())
		return false
	}
	if _, e := sys(syscall.SYS_PIVOT_ROOT, rootDir.ptr(), oldDir.ptr(), 0, 0, 0); e != 0 {
		record(stepPivot, e, rootDir.str())
		return false
	}
	if _, e := sys(syscall.SYS_CHDIR, strPtr("/\x00"), 0, 0, 0, 0); e != 0 {
		record(stepEnter, e, "/")
		return false
	}
	return true
}

//go:nosplit
func bindStore(storeDir string) bool {
	for i := 1; i <= len(storeDir); i++ {
		if i == len(storeDir) || storeDir[i] == '/' {
			prefix.set(storeDir[:i], "", "")
			sys(syscall.SYS_MKDIRAT, atFDCWD, prefix.ptr(), 0o755, 0, 0)
		}
	}
	if _, e := sys(syscall.SYS_MOUNT, source.ptr(), strPtr(storeDir), 0, syscall.MS_BIND|syscall.MS_REC, 0); e != 0 {
		record(stepBind, e, source.str()[len(oldRoot):])
		return false
	}
	if _, e := sys(syscall.SYS_UMOUNT2, strPtr(oldRoot+"\x00"), mntDetach, 0, 0, 0); e != 0 {
		record(stepDetach, e, oldRoot)
		return false
	}
	if _, e := sys(syscall.SYS_UNLINKAT, atFDCWD, strPtr(oldRoot+"\x00"), atRemove, 0, 0); e != 0 {
		record(stepRemove, e, oldRoot)
		return false
	}
	// Nothing more is written to the new root itself.
	sys(syscall.SYS_MOUNT, strPtr("none\x00"), strPtr("/\x00"), 0, syscall.MS_REMOUNT|syscall.MS_BIND|syscall.MS_RDONLY, 0)
	if _, e := sys(syscall.SYS_CHDIR, cwd.ptr(), 0, 0, 0, 0); e != 0 {
		sys(syscall.SYS_CHDIR, strPtr("/\x00"), 0, 0, 0, 0)
	}
	return true
}

// writeID writes a map of id to itself into the file at path (a
// uid_map or gid_map, NUL-terminated).
//
//go:nosplit
func writeID(path string, id uintptr) bool {
	// "id id 1\n", the digits written from the end.
	i := len(idLine)
	i--
	idLine[i] = '\n'
	i--
	idLine[i] = '1'
	for range 2 {
		i--
		idLine[i] = ' '
		for v := id; ; {
			i--
			idLine[i] = byte('0' + v%10)
			if v /= 10; v == 0 {
				break
			}
		}
	}
	name := path[:len(path)-1]
	fd, e := sys(syscall.SYS_OPENAT, atFDCWD, strPtr(path), syscall.O_WRONLY|syscall.O_CLOEXEC, 0, 0)
	if e != 0 {
		record(stepOpen, e, name)
		return false
	}
	_, e = sys(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&idLine[i])), uintptr(len(idLine)-i), 0, 0)
	sys(syscall.SYS_CLOSE, fd, 0, 0, 0, 0)
	if e != 0 {
		record(stepWrite, e, name)
		return false
	}
	return true
}

// mirrorRoot makes each top-level entry of the host's root, now at
// oldRoot, but the store folder's top-level folder and oldRoot itself
// stand in the new root for the host's (mirror).
//
//go:nosplit
func mirrorRoot(storeDir string) bool {
	top := storeDir[1:]
	for i := range len(top) {
		if top[i] == '/' {
			top = top[:i]
			break
		}
	}
	fd, e := sys(syscall.SYS_OPENAT, atFDCWD, strPtr(oldRoot+"\x00"), syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0, 0)
	if e != 0 {
		record(stepList, e, "/")
		return false
	}
	for {
		n, e := sys(syscall.SYS_GETDENTS64, fd, uintptr(unsafe.Pointer(&dents[0])), uintptr(len(dents)), 0, 0)
		if e != 0 {
			record(stepList, e, "/")
			return false
		}
		if n == 0 || n > uintptr(len(dents)) {
			break
		}
		// Each record: inode (8 bytes), offset (8), length (2), type
		// (1), name (NUL-terminated); records are 8-byte aligned.
		for at := uintptr(0); at+19 < n; {
			reclen := uintptr(*(*uint16)(unsafe.Pointer(&dents[at+16])))
			if reclen < 20 || at+reclen > n {
				break
			}
			typ := dents[at+18]
			name := cstring(dents[at+19 : at+reclen])
			at += reclen
			if name == "" || name == "." || name == ".." || name == top || name == oldRoot[1:] {
				continue
			}
			mirror(fd, name, typ)
		}
	}
	sys(syscall.SYS_CLOSE, fd, 0, 0, 0, 0)
	return true
}

// mirror makes /name stand for the host's oldRoot/name, an entry of the
// folder fd of type typ (a dirent type): a symlink with its target, or a
// folder or file with the host's bound on it. An entry that cannot be
// bound is left out, as the host's user could not reach it either.
//
//go:nosplit
func mirror(fd uintptr, name string, typ byte) {
	if !dst.set("/", name, "") || !src.set(oldRoot, "/", name) {
		return
	}
	if typ == dtLink || typ == dtUnknown {
		n, e := sys(syscall.SYS_READLINKAT, fd, strPtr(name), link.ptr(), uintptr(len(link.b)-1), 0)
		if e == 0 {
			link.b[n] = 0
			sys(syscall.SYS_SYMLINKAT, link.ptr(), atFDCWD, dst.ptr(), 0, 0)
			return
		}
		if typ == dtLink {
			return
		}
	}
	if typ == dtDir || typ == dtUnknown {
		if _, e := sys(syscall.SYS_MKDIRAT, atFDCWD, dst.ptr(), 0o755, 0, 0); e != 0 {
			return
		}
		_, e := sys(syscall.SYS_MOUNT, src.ptr(), dst.ptr(), 0, syscall.MS_BIND|syscall.MS_REC, 0)
		if e == 0 {
			return
		}
		sys(syscall.SYS_UNLINKAT, atFDCWD, dst.ptr(), atRemove, 0, 0)
		if typ == dtDir || e != enotdir {
			return
		}
	}
	if _, e := sys(syscall.SYS_MKNODAT, atFDCWD, dst.ptr(), modeFile, 0, 0); e != 0 {
		return
	}
	if _, e := sys(syscall.SYS_MOUNT, src.ptr(), dst.ptr(), 0, syscall.MS_BIND|syscall.MS_REC, 0); e != 0 {
		sys(syscall.SYS_UNLINKAT, atFDCWD, dst.ptr(), 0, 0, 0)
	}
}
