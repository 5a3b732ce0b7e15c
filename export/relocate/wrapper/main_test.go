//go:build linux

package main

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/storepack/storepack/export/relocate/area"
)

func TestPackRoot(t *testing.T) {
	const item = "0123456789abcdfghijklmnpqrsvwxyz-profile"
	for _, c := range []struct {
		exe, dir, root string
		ok             bool
	}{
		{"/home/u/pack/gnu/store/" + item + "/bin/hello", "/gnu/store", "/home/u/pack", true},
		{"/gnu/store/" + item + "/bin/hello", "/gnu/store", "", true},
		// The last store folder followed by an item's name counts.
		{"/x/gnu/store/" + item + "/gnu/store/" + item + "/bin/a", "/gnu/store", "/x/gnu/store/" + item, true},
		{"/x/gnu/store/" + item + "/gnu/store/not-an-item/bin/a", "/gnu/store", "/x", true},
		{"/x/nix/store/" + item + "/bin/a", "/gnu/store", "", false},
		{"/x/gnu/store/0123456789abcdfghijklmnpqrsvwxye-hello/bin/a", "/gnu/store", "", false}, // e is not Nix base32
		{"/x/gnu/storefront/" + item + "/bin/a", "/gnu/store", "", false},
	} {
		end, ok := packRoot(c.exe, c.dir)
		if root := c.exe[:end]; root != c.root || ok != c.ok {
			t.Errorf("packRoot(%q, %q) = %q, %v; want %q, %v", c.exe, c.dir, root, ok, c.root, c.ok)
		}
	}
}

// writeProc makes a /proc/sys-like tree with the given settings.
func writeProc(t *testing.T, settings map[string]string) string {
	proc := t.TempDir()
	for name, v := range settings {
		p := filepath.Join(proc, "sys", name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(v+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return proc
}

func TestDisabled(t *testing.T) {
	for _, c := range []struct {
		settings map[string]string
		want     string // "" when enabled
	}{
		{map[string]string{"user/max_user_namespaces": "0"}, "/sys/user/max_user_namespaces is 0"},
		{map[string]string{"user/max_user_namespaces": "1000", "kernel/unprivileged_userns_clone": "0"}, "/sys/kernel/unprivileged_userns_clone is 0"},
		{map[string]string{"user/max_user_namespaces": "1000", "kernel/unprivileged_userns_clone": "1"}, ""},
		{nil, ""},
	} {
		proc := writeProc(t, c.settings)
		got := disabled(proc)
		switch {
		case c.want == "" && got != "":
			t.Errorf("%v: %q, want no reason", c.settings, got)
		case c.want != "" && (!strings.Contains(got, proc+c.want) || !strings.Contains(got, "unpack it at / as root")):
			t.Errorf("%v: %q, want it to name %s%s and the way out", c.settings, got, proc, c.want)
		}
	}
}

func TestNamespaceError(t *testing.T) {
	proc := writeProc(t, map[string]string{"user/max_user_namespaces": "15000", "kernel/apparmor_restrict_unprivileged_userns": "1"})
	got := namespaceError("a user namespace (unshare)", syscall.EPERM, proc)
	for _, want := range []string{"cannot make a user namespace (unshare): operation not permitted (EPERM)", "AppArmor", proc + "/sys/kernel/apparmor_restrict_unprivileged_userns is 1"} {
		if !strings.Contains(got, want) {
			t.Errorf("EPERM under AppArmor: %q lacks %q", got, want)
		}
	}
	proc = writeProc(t, map[string]string{"user/max_user_namespaces": "15000"})
	got = namespaceError("a user namespace (unshare)", syscall.ENOSPC, proc)
	for _, want := range []string{"(ENOSPC)", "is reached", proc + "/sys/user/max_user_namespaces is 15000"} {
		if !strings.Contains(got, want) {
			t.Errorf("ENOSPC: %q lacks %q", got, want)
		}
	}
}

// TestBlock checks that the wrapper's block begins with area's Magic,
// which the wrapper's code names only by its length.
func TestBlock(t *testing.T) {
	if got := string(block[:area.MagicLen]); got != area.Magic {
		t.Errorf("block begins with %q, want %q", got, area.Magic)
	}
	for i, c := range block[area.MagicLen:] {
		if c != 0 {
			t.Fatalf("byte %d of the block is %#x, want an empty block", area.MagicLen+i, c)
		}
	}
}

// TestFailure checks main's explanation of each step early records.
func TestFailure(t *testing.T) {
	proc := writeProc(t, map[string]string{"user/max_user_namespaces": "15000"})
	for _, c := range []struct {
		step  uintptr
		errno syscall.Errno
		path  string
		want  string
	}{
		{stepExec, syscall.EACCES, "/gnu/store/x-hello/bin/hello", "exec: permission denied (EACCES)"},
		{stepSelf, syscall.ENOENT, "/proc/self/exe", "/proc/self/exe: no such file or directory (ENOENT)"},
		{stepPlace, 0, "/tmp/hello", "nor is this wrapper (/tmp/hello) inside a store folder /gnu/store"},
		{stepMissing, syscall.ENOENT, "/u/p/gnu/store/x-hello/bin/hello", "not in the pack: /u/p/gnu/store/x-hello/bin/hello: no such file or directory (ENOENT)"},
		{stepUnshare, syscall.ENOSPC, "", "cannot make a user namespace (unshare): no space left on device (ENOSPC); the number of user namespaces allowed"},
		{stepWrite, syscall.EPERM, "/proc/self/uid_map", "cannot make the pack's root: writing /proc/self/uid_map: operation not permitted (EPERM) (" + proc + "/sys/user/max_user_namespaces is 15000)"},
		{stepBind, syscall.EINVAL, "/u/p/gnu/store", "cannot make the pack's root: binding the pack's store /u/p/gnu/store: invalid argument (EINVAL)"},
		{stepRemove, syscall.EBUSY, oldRoot, "removing " + oldRoot + ": device or resource busy (EBUSY)"},
		{99, 0, "", "the entry code stopped without saying why (step 99)"},
	} {
		if got := failure(c.step, c.errno, c.path, "/gnu/store", proc); !strings.Contains(got, c.want) {
			t.Errorf("step %d: %q, want it to contain %q", c.step, got, c.want)
		}
	}
}
