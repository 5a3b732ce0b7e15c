//go:build linux

package main

import (
	"os"
	"strings"
	"syscall"
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
	if err := step(syscall.Mount("none", "/", "", syscall.MS_REC|syscall.MS_PRIVATE, ""), "making / private", "/"); err != nil {
		return err
	}
	// Any folder will do as the tmpfs's mount point; pivot_root moves the
	// tmpfs to / and uncovers the folder under it.
	if err := step(syscall.Mount("tmpfs", root, "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV, "mode=0755"), "mounting a tmpfs", root); err != nil {
		return err
	}
	if err := step(syscall.Mkdir(root+oldRoot, 0o700), "making", root+oldRoot); err != nil {
		return err
	}
	if err := step(syscall.PivotRoot(root, root+oldRoot), "pivot_root", root); err != nil {
		return err
	}
	if err := step(syscall.Chdir("/"), "entering", "/"); err != nil {
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
			syscall.Mkdir(storeDir[:i], 0o755)
		}
	}
	if err := step(syscall.Mount(oldRoot+root+storeDir, storeDir, "", syscall.MS_BIND|syscall.MS_REC, ""), "binding the pack's store", root+storeDir); err != nil {
		return err
	}
	if err := step(syscall.Unmount(oldRoot, syscall.MNT_DETACH), "detaching the host's root", oldRoot); err != nil {
		return err
	}
	if err := step(syscall.Rmdir(oldRoot), "removing", oldRoot); err != nil {
		return err
	}
	// Nothing more is written to the new root itself.
	syscall.Mount("none", "/", "", syscall.MS_REMOUNT|syscall.MS_BIND|syscall.MS_RDONLY, "")
	if syscall.Chdir(cwd) != nil {
		syscall.Chdir("/")
	}
	return nil
}

// writeFile writes data into the existing file path.
func writeFile(path, data string) error {
	fd, err := syscall.Open(path, syscall.O_WRONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		if err == syscall.ENOENT {
			return &os.PathError{Op: "open", Path: path, Err: err}
		}
		return &stepError{"opening", path, err}
	}
	defer syscall.Close(fd)
	if _, err := syscall.Write(fd, []byte(data)); err != nil {
		return &stepError{"writing " + strings.TrimSpace(data) + " to", path, err}
	}
	return nil
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
			syscall.Symlink(target, dst)
		}
		return
	case typ.IsDir():
		if syscall.Mkdir(dst, 0o755) != nil {
			return
		}
	default:
		if syscall.Mknod(dst, syscall.S_IFREG|0o644, 0) != nil {
			return
		}
	}
	if syscall.Mount(src, dst, "", syscall.MS_BIND|syscall.MS_REC, "") == nil {
		return
	}
	if typ.IsDir() {
		syscall.Rmdir(dst)
	} else {
		syscall.Unlink(dst)
	}
}
