//go:build linux

package main

import (
	"os"
	"strings"
	"syscall"
	"unsafe"
)

// oldRoot is where enter keeps the host's root while it builds the new
// one; the host's entry of that name, if any, is not mirrored.
const oldRoot = "/.storepack-host-root"

// unlinkDir is AT_REMOVEDIR.
const unlinkDir = 0x200

// stepError is a failed step of enter: what it did, on which path.
type stepError struct {
	what, path string
	err        error
}

func (e *stepError) Error() string { return e.what + " " + e.path + ": " + e.err.Error() }
func (e *stepError) Unwrap() error { return e.err }

// enter makes, in the user and mount namespaces the entry code unshared,
// the root in which the pack unpacked at root has its store at storeDir:
// it takes the caller's uid and gid in the user namespace, makes a tmpfs
// the root (pivot_root), mirrors the host's root in it (every top-level
// entry but the store folder's top-level folder and oldRoot), binds the
// pack's store at storeDir, detaches the host's root and returns to the
// working folder.
func enter(root, storeDir string) error {
	cwd, err := os.Getwd()
	if err != nil {
		cwd = "/"
	}
	entries, err := os.ReadDir("/")
	if err != nil {
		return &stepError{"reading", "/", err}
	}
	links := map[string]string{}
	for _, e := range entries {
		if e.Type()&os.ModeSymlink != 0 {
			links[e.Name()], _ = os.Readlink("/" + e.Name())
		}
	}

	if err := writeFile("/proc/self/uid_map", idMap(int(entryEUID))); err != nil {
		return err
	}
	// setgroups is absent before Linux 3.19.
	if err := writeFile("/proc/self/setgroups", "deny"); err != nil && !os.IsNotExist(err) {
		return err
	}
	if err := writeFile("/proc/self/gid_map", idMap(int(entryEGID))); err != nil {
		return err
	}

	step := func(err error, what, path string) error {
		if err != nil {
			return &stepError{what, path, err}
		}
		return nil
	}
	if err := step(mount("none", "/", "", syscall.MS_REC|syscall.MS_PRIVATE, ""), "making / private", "/"); err != nil {
		return err
	}
	// Any folder will do as the tmpfs's mount point; pivot_root moves the
	// tmpfs to / and uncovers the folder under it.
	if err := step(mount("tmpfs", root, "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV, "mode=0755"), "mounting a tmpfs", root); err != nil {
		return err
	}
	if err := step(mkdir(root+oldRoot, 0o700), "making", root+oldRoot); err != nil {
		return err
	}
	if err := step(pivotRoot(root, root+oldRoot), "pivot_root", root); err != nil {
		return err
	}
	if err := step(chdir("/"), "entering", "/"); err != nil {
		return err
	}
	top, _, _ := strings.Cut(storeDir[1:], "/")
	for _, e := range entries {
		name := e.Name()
		if name == top || "/"+name == oldRoot {
			continue
		}
		mirror(oldRoot+"/"+name, "/"+name, e.Type(), links[name])
	}
	for i := 1; i <= len(storeDir); i++ {
		if i == len(storeDir) || storeDir[i] == '/' {
			mkdir(storeDir[:i], 0o755)
		}
	}
	if err := step(mount(oldRoot+root+storeDir, storeDir, "", syscall.MS_BIND|syscall.MS_REC, ""), "binding the pack's store", root+storeDir); err != nil {
		return err
	}
	if err := step(unmount(oldRoot, syscall.MNT_DETACH), "detaching the host's root", oldRoot); err != nil {
		return err
	}
	if err := step(rmdir(oldRoot), "removing", oldRoot); err != nil {
		return err
	}
	// Nothing more is written to the new root itself.
	mount("none", "/", "", syscall.MS_REMOUNT|syscall.MS_BIND|syscall.MS_RDONLY, "")
	if chdir(cwd) != nil {
		chdir("/")
	}
	return nil
}

// writeFile writes data into the existing file path.
func writeFile(path, data string) error {
	fd, _, e := syscall.RawSyscall6(syscall.SYS_OPENAT, atFDCWD, ptr(path), syscall.O_WRONLY|syscall.O_CLOEXEC, 0, 0, 0)
	if e == syscall.ENOENT {
		return &os.PathError{Op: "open", Path: path, Err: e}
	} else if e != 0 {
		return &stepError{"opening", path, e}
	}
	defer syscall.RawSyscall(syscall.SYS_CLOSE, fd, 0, 0)
	b := []byte(data)
	if _, _, e := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b))); e != 0 {
		return &stepError{"writing " + strings.TrimSpace(data) + " to", path, e}
	}
	return nil
}

// The system calls that make the pack's root go straight to the kernel
// (RawSyscall): a mount may take long enough for the runtime to hand
// its P to another thread when made the usual way, which costs more
// context switches than the calls themselves take. Paths are clean
// (package area checks them), so they hold no NUL.

// atFDCWD is AT_FDCWD as a system call argument.
const atFDCWD = ^uintptr(99) // -100

// ptr returns a NUL-terminated copy of s as a system call argument; the
// garbage collector does not move it, and nothing frees it before the
// wrapper execs.
func ptr(s string) uintptr {
	if s == "" {
		return 0
	}
	b := make([]byte, len(s)+1)
	copy(b, s)
	keep = append(keep, b)
	return uintptr(unsafe.Pointer(&b[0]))
}

// keep holds the strings ptr made.
var keep [][]byte

// errnoErr is e as an error: nil when 0.
func errnoErr(e syscall.Errno) error {
	if e == 0 {
		return nil
	}
	return e
}

func raw(trap, a0, a1, a2, a3, a4 uintptr) error {
	_, _, e := syscall.RawSyscall6(trap, a0, a1, a2, a3, a4, 0)
	return errnoErr(e)
}

func mount(src, target, fstype string, flags uintptr, data string) error {
	return raw(syscall.SYS_MOUNT, ptr(src), ptr(target), ptr(fstype), flags, ptr(data))
}
func unmount(target string, flags uintptr) error {
	return raw(syscall.SYS_UMOUNT2, ptr(target), flags, 0, 0, 0)
}
func mkdir(path string, mode uintptr) error {
	return raw(syscall.SYS_MKDIRAT, atFDCWD, ptr(path), mode, 0, 0)
}
func mknod(path string, mode uintptr, dev uintptr) error {
	return raw(syscall.SYS_MKNODAT, atFDCWD, ptr(path), mode, dev, 0)
}
func symlink(target, path string) error {
	return raw(syscall.SYS_SYMLINKAT, ptr(target), atFDCWD, ptr(path), 0, 0)
}
func unlink(path string) error { return raw(syscall.SYS_UNLINKAT, atFDCWD, ptr(path), 0, 0, 0) }
func rmdir(path string) error  { return raw(syscall.SYS_UNLINKAT, atFDCWD, ptr(path), unlinkDir, 0, 0) }
func chdir(path string) error  { return raw(syscall.SYS_CHDIR, ptr(path), 0, 0, 0, 0) }
func pivotRoot(newRoot, putOld string) error {
	return raw(syscall.SYS_PIVOT_ROOT, ptr(newRoot), ptr(putOld), 0, 0, 0)
}

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

// mirror makes dst stand for the host's src: a symlink with its target,
// or a folder or file with src bound on it. An entry that cannot be
// bound is left out, as the host's user could not reach it either.
func mirror(src, dst string, typ os.FileMode, target string) {
	switch {
	case typ&os.ModeSymlink != 0:
		if target != "" {
			symlink(target, dst)
		}
		return
	case typ.IsDir():
		if mkdir(dst, 0o755) != nil {
			return
		}
	default:
		if mknod(dst, syscall.S_IFREG|0o644, 0) != nil {
			return
		}
	}
	if mount(src, dst, "", syscall.MS_BIND|syscall.MS_REC, "") == nil {
		return
	}
	if typ.IsDir() {
		rmdir(dst)
	} else {
		unlink(dst)
	}
}
