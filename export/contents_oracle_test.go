package export

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/storepack/storepack/format"
	"github.com/storepack/storepack/internal/fixture"
	"github.com/storepack/storepack/internal/oracle"
	"github.com/storepack/storepack/plan"
	"github.com/storepack/storepack/spec"
	"github.com/storepack/storepack/store"
)

// contentsExport plans an export of the runnable closure with an account
// (user app, 1000:100), the image's user set to it, and two file blocks.
func contentsExport(t testing.TB, f format.Format, tag string) (*plan.Export, *fixture.Store) {
	t.Helper()
	fs := fixture.Write(t, "/gnu/store", "", runnableItems(t))
	bb := string(fs.ByName["busybox-static"]) + "/bin/busybox"
	e := &spec.Export{
		Name:   "contents",
		Format: f,
		Entrypoint: []string{bb, "sh", "-c", "id -u; id -g; touch /home/app/made; stat -c '%u:%g' /home/app/made; " +
			"cat /etc/motd; stat -c '%a %u:%g' /etc/motd; cat /opt/app/conf/settings.json"},
		Symlinks: map[string]string{"/bin": string(fs.ByName["busybox-static"]) + "/bin"},
		Accounts: []spec.Account{{Name: "app", UID: 1000, GID: 100, Home: "/home/app"}},
		Files: []spec.File{
			{Path: "/etc/motd", Content: "welcome\n", Mode: 0o640, UID: 1000, GID: 100},
			{Path: "/opt/app/conf/settings.json", Content: `{"debug":false}`, Mode: 0o644},
		},
		Image: spec.Image{Tag: tag, User: "app"},
	}
	e.Systems = []spec.System{{Name: "x86_64-linux", Paths: []store.Path{fs.ByName["hello-script"]}}}
	out := &plan.Export{Name: e.Name, Format: e.Format, Output: "contents.tar"}
	out.Systems = append(out.Systems, *fs.System(t, "x86_64-linux", e, "hello-script"))
	return out, fs
}

// TestAccountsAndFilesPodman: podman runs the image as the account, which
// owns its home and what it makes there; the file blocks are there with
// their modes and owners, their folders made.
func TestAccountsAndFilesPodman(t *testing.T) {
	podman := oracle.Require(t, "podman")
	oracle.Require(t, "runc")
	tag := "localhost/storepack-test-contents:1"
	e, _ := contentsExport(t, format.Format("docker"), tag)
	file, _ := writeDockerFile(t, e)
	run(t, podman, "load", "-i", file)
	defer exec.Command(podman, "rmi", "-f", tag).Run()
	got := strings.TrimSpace(string(podmanRun(t, podman, "--network", "none", tag)))
	want := "1000\n100\n1000:100\nwelcome\n640 1000:100\n{\"debug\":false}"
	if got != want {
		t.Errorf("podman run printed\n%s\nwant\n%s", got, want)
	}
	passwd := string(podmanRun(t, podman, "--network", "none", "--entrypoint", "/bin/busybox", tag, "cat", "/etc/passwd", "/etc/group"))
	for _, line := range []string{"root:x:0:0:", "nobody:x:65534:65534:", "app:x:1000:100::/home/app:", "root:x:0:", "app:x:100:"} {
		if !strings.Contains(passwd, line) {
			t.Errorf("/etc/passwd and /etc/group lack %q:\n%s", line, passwd)
		}
	}
}

// TestAccountsAndFilesTarball: GNU tar lists the home folder and the files
// with their owners and modes, and extracts them so as root.
func TestAccountsAndFilesTarball(t *testing.T) {
	tarBin := oracle.Require(t, "tar")
	e, _ := contentsExport(t, format.Format("tarball"), "")
	e.Output = ""
	sys := &e.Systems[0]
	sys.Output = "contents.tar"
	sys.Tree.Compression = format.None
	out := t.TempDir()
	if _, err := writeExport(&plan.Plan{}, e, out, Options{}); err != nil {
		t.Fatal(err)
	}
	list := string(run(t, tarBin, "-tvf", filepath.Join(out, "contents.tar"), "--numeric-owner"))
	for _, want := range []string{"drwxr-xr-x 1000/100", "home/app/", "-rw-r----- 1000/100", "etc/motd", "opt/app/conf/settings.json", "etc/passwd"} {
		if !strings.Contains(list, want) {
			t.Errorf("tar -tv lacks %q:\n%s", want, list)
		}
	}
	for _, line := range strings.Split(list, "\n") {
		if strings.HasSuffix(line, " home/app/") && !strings.HasPrefix(line, "drwxr-xr-x 1000/100") {
			t.Errorf("home folder: %s", line)
		}
		if strings.HasSuffix(line, " etc/motd") && !strings.HasPrefix(line, "-rw-r----- 1000/100") {
			t.Errorf("motd: %s", line)
		}
		if strings.HasSuffix(line, " opt/app/conf/") && !strings.HasPrefix(line, "drwxr-xr-x 0/0") {
			t.Errorf("a folder made above a file: %s", line)
		}
	}
}
