package main

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/storepack/storepack/export"
)

// faultSpec is a spec exporting the source folder "data" in format
// (binary caches uncompressed); "oci-archive" is an oci export to
// data.tar.
func faultSpec(format string) string {
	extra := ""
	switch format {
	case "binary-cache":
		extra = "  compression = \"none\"\n"
	case "oci-archive":
		format, extra = "oci", "  output = \"data.tar\"\n"
	}
	return "store {\n  dir = \"/nix/store\"\n  db  = \"none\"\n}\n\nsource \"data\" {\n  path = \"data\"\n}\n\nexport \"data\" {\n  format = \"" + format + "\"\n  paths  = [source.data.store_path]\n" + extra + "}\n"
}

// faultDir writes a spec folder whose source "data" holds files files of
// size bytes each (patterned so that no two blocks are alike).
func faultDir(t *testing.T, format string, files, size int) string {
	t.Helper()
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "storepack.hcl"), faultSpec(format))
	fillData(t, filepath.Join(dir, "data"), files, size)
	return dir
}

// fillData replaces the folder data with files files of size bytes.
func fillData(t *testing.T, data string, files, size int) {
	t.Helper()
	removeAll(t, data)
	mkdir(t, data)
	buf := make([]byte, size)
	for i := range files {
		for j := 0; j < size; j += 32 {
			sum := sha256.Sum256(fmt.Appendf(nil, "%d-%d", i, j))
			copy(buf[j:], sum[:])
		}
		if err := os.WriteFile(filepath.Join(data, fmt.Sprintf("f%03d", i)), buf, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// exportCmd is `storepack export` of the spec in dir into out.
func exportCmd(dir, out string) *exec.Cmd {
	cmd := exec.Command(bin, "export", "-C", dir, "--out", out)
	cmd.Env = cleanEnv()
	return cmd
}

// fileSum is the sha256 of a file, or "" when it cannot be read.
func fileSum(p string) string {
	b, err := os.ReadFile(p)
	if err != nil {
		return ""
	}
	return fmt.Sprintf("%x", sha256.Sum256(b))
}

// tempFiles lists the storepack temporary files in dir.
func tempFiles(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if strings.Contains(e.Name(), ".tmp-") {
			out = append(out, e.Name())
		}
	}
	return out
}

// diskSize is the bytes of the files under p (p itself when a file).
func diskSize(p string) int64 {
	var n int64
	filepath.WalkDir(p, func(_ string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

// TestKillMidExport kills an export of a 200 MB source with SIGKILL once
// its temporary files have grown: the previous output is intact, nothing
// is at the final path but it, and the next export removes the killed
// one's temporary files (an oci-archive's temporary layout folder too).
func TestKillMidExport(t *testing.T) {
	for _, format := range []string{"nar", "docker", "oci-archive"} {
		t.Run(format, func(t *testing.T) {
			dir := faultDir(t, format, 2, 1<<20)
			out := filepath.Join(t.TempDir(), "out")
			final := filepath.Join(out, map[string]string{"nar": "data.nar", "docker": "data.tar", "oci-archive": "data.tar"}[format])
			if r := runCmd(t, exportCmd(dir, out)); r.code != 0 {
				t.Fatalf("first export: exit %d\n%s", r.code, r.stderr)
			}
			before := fileSum(final)

			fillData(t, filepath.Join(dir, "data"), 50, 4<<20) // 200 MB
			cmd := exportCmd(dir, out)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			killed := false
			deadline := time.Now().Add(2 * time.Minute)
		poll:
			for time.Now().Before(deadline) {
				select {
				case err := <-done:
					t.Fatalf("the export ended (%v) before its temporary file grew past 20 MB\n%s", err, stderr.Bytes())
				default:
				}
				for _, name := range tempFiles(t, out) {
					if diskSize(filepath.Join(out, name)) > 20<<20 {
						cmd.Process.Signal(syscall.SIGKILL)
						killed = true
						break poll
					}
				}
				time.Sleep(2 * time.Millisecond)
			}
			if !killed {
				cmd.Process.Kill()
				t.Fatal("the temporary file never grew past 20 MB")
			}
			err := <-done
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
				t.Fatalf("the export was not killed: %v", err)
			}
			if got := fileSum(final); got != before {
				t.Errorf("%s changed under a killed export: sha256 %s, was %s", final, got, before)
			}
			stale := tempFiles(t, out)
			if len(stale) == 0 {
				t.Fatal("the killed export left no temporary file (was it killed too late?)")
			}
			t.Logf("the killed export left %s", stale)

			// The next export (the small source again) removes it.
			fillData(t, filepath.Join(dir, "data"), 2, 1<<20)
			if r := runCmd(t, exportCmd(dir, out)); r.code != 0 {
				t.Fatalf("export after the kill: exit %d\n%s", r.code, r.stderr)
			}
			if got := fileSum(final); got != before {
				t.Errorf("the export after the kill wrote sha256 %s, the first %s", got, before)
			}
			if left := tempFiles(t, out); len(left) != 0 {
				t.Errorf("the export after the kill left %s", left)
			}
		})
	}
}

// TestConcurrentExports: exports into one output folder are serialised
// by the lock file .storepack-export.lock. An export waits while another
// holds the lock (writing nothing meanwhile) and then completes; two
// exports started together both succeed with the same bytes.
func TestConcurrentExports(t *testing.T) {
	dir := faultDir(t, "nar", 4, 1<<20)
	out := filepath.Join(t.TempDir(), "out")
	final := filepath.Join(out, "data.nar")
	mkdir(t, out)

	t.Run("waits for the lock", func(t *testing.T) {
		f, err := os.OpenFile(filepath.Join(out, export.OutLockFile), os.O_RDWR|os.O_CREATE, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
			t.Fatal(err)
		}
		cmd := exportCmd(dir, out)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			t.Fatalf("the export ended (%v) while another held the lock\n%s", err, stderr.Bytes())
		case <-time.After(time.Second):
		}
		if _, err := os.Stat(final); err == nil || len(tempFiles(t, out)) != 0 {
			t.Errorf("the waiting export wrote into the output folder")
		}
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		if err := <-done; err != nil {
			t.Fatalf("export after the lock was released: %v\n%s", err, stderr.Bytes())
		}
	})
	want := fileSum(final)
	if want == "" {
		t.Fatal("no output")
	}

	t.Run("two at once", func(t *testing.T) {
		removeAll(t, final)
		var cmds []*exec.Cmd
		var errs []*bytes.Buffer
		for range 2 {
			cmd := exportCmd(dir, out)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			cmds, errs = append(cmds, cmd), append(errs, &stderr)
		}
		for i, cmd := range cmds {
			if err := cmd.Wait(); err != nil {
				t.Errorf("export %d: %v\n%s", i, err, errs[i].Bytes())
			}
		}
		if got := fileSum(final); got != want {
			t.Errorf("after two exports at once: sha256 %s, want %s", got, want)
		}
		if left := tempFiles(t, out); len(left) != 0 {
			t.Errorf("two exports at once left %s", left)
		}
	})
}

// TestFullDisk exports into a 2 MB tmpfs: the export fails naming its
// output and saying the disk is full, the previous output is intact and
// no temporary file is left. Mounting needs root (CAP_SYS_ADMIN); without
// it the test is skipped, saying so.
func TestFullDisk(t *testing.T) {
	for _, format := range []string{"nar", "docker", "binary-cache"} {
		t.Run(format, func(t *testing.T) {
			mnt := t.TempDir()
			if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", mnt).CombinedOutput(); err != nil {
				t.Skipf("cannot mount a tmpfs (a privilege, not a tool: needs root with CAP_SYS_ADMIN): %v: %s", err, out)
			}
			t.Cleanup(func() {
				if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
					t.Errorf("umount %s: %v: %s", mnt, err, out)
				}
			})
			dir := faultDir(t, format, 1, 64<<10)
			out := filepath.Join(mnt, "out")
			if r := runCmd(t, exportCmd(dir, out)); r.code != 0 {
				t.Fatalf("small export: exit %d\n%s", r.code, r.stderr)
			}
			before := treeSums(t, out)

			fillData(t, filepath.Join(dir, "data"), 2, 3<<20)
			r := runCmd(t, exportCmd(dir, out))
			t.Logf("exit %d: %s", r.code, r.stderr)
			if r.code != 1 {
				t.Fatalf("export into a full disk: exit %d, want 1\n%s", r.code, r.stderr)
			}
			msg := string(r.stderr)
			for _, want := range []string{"storepack: ", out, "no space left on device"} {
				if !strings.Contains(msg, want) {
					t.Errorf("stderr lacks %q:\n%s", want, msg)
				}
			}
			if strings.Contains(msg, "panic") {
				t.Errorf("stderr holds a panic:\n%s", msg)
			}
			if after := treeSums(t, out); !equalMaps(before, after) {
				t.Errorf("the output folder changed:\nbefore %v\nafter  %v", before, after)
			}
		})
	}
}

// treeSums maps each file under dir (relative) to its sha256.
func treeSums(t *testing.T, dir string) map[string]string {
	t.Helper()
	sums := map[string]string{}
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			sums[rel] = fileSum(p)
		}
		return nil
	})
	return sums
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}
