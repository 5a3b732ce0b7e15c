package storepack

import (
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/storepack/storepack/export"
	"github.com/storepack/storepack/internal/oracle"
)

var update = flag.Bool("update", false, "rewrite the golden files from the code under test")

var buildExamples = sync.OnceValue(func() error {
	// The same build as `go run mage.go examples`.
	for _, arch := range []string{"amd64", "arm64"} {
		cmd := exec.Command("go", "build", "-trimpath", "-buildvcs=false", "-ldflags=-s -w -buildid=",
			"-o", "examples/build/"+arch+"/app", "./examples/app")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch, "GOFLAGS=")
		if out, err := cmd.CombinedOutput(); err != nil {
			return &exec.ExitError{Stderr: out}
		}
	}
	return nil
})

// examples builds the example program and returns options for the
// bundled examples spec with outputs in a temporary folder.
func examples(t *testing.T) Options {
	t.Helper()
	if err := buildExamples(); err != nil {
		t.Fatalf("building the example program: %v", err)
	}
	// A lowercase folder: podman names images pulled from an oci: layout
	// after its path.
	out, err := os.MkdirTemp("", "storepack-examples-")
	must(t, err)
	t.Cleanup(func() { os.RemoveAll(out) })
	return Options{SpecDir: "examples", OutDir: out}
}

// TestExamplesPlan compares the plan of the bundled examples with
// examples/plan.golden.json; -update rewrites it.
func TestExamplesPlan(t *testing.T) {
	plan, err := Plan(examples(t))
	if err != nil {
		t.Fatal(err)
	}
	var got strings.Builder
	if err := WritePlan(&got, plan); err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("examples", "plan.golden.json")
	if *update {
		must(t, os.WriteFile(golden, []byte(got.String()), 0o644))
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (go test . -update writes it)", err)
	}
	if d := cmp.Diff(string(want), got.String()); d != "" {
		t.Errorf("%s mismatch (-want +got):\n%s", golden, d)
	}
}

// readmeOutput is an output file as README.md quotes it after
// `$ go run mage.go export`: "out/PATH  sha256:HEX…  SIZE bytes", HEX the
// digest's first digits (at least 8) or all of them.
var readmeOutput = regexp.MustCompile(`^\s+(out/\S+)\s+sha256:([0-9a-f]{8,64})…?\s+([0-9]+) bytes$`)

// TestREADMEDigests exports the bundled examples as `go run mage.go
// export` does and checks what README.md quotes of them: the listing after
// `$ go run mage.go export` names every file written, each with its size
// and its sha256 (or its first digits); every sha256 digest the README
// quotes is one of that listing's; and every store path it quotes is one
// of the examples' closures. When the outputs change, copy the real
// values from `go run mage.go export` into the README.
func TestREADMEDigests(t *testing.T) {
	o := examples(t)
	files, err := Export(o)
	if err != nil {
		t.Fatal(err)
	}
	written := map[string]export.File{}
	for _, f := range files {
		written["out/"+f.Path] = f
	}
	b, err := os.ReadFile("README.md")
	must(t, err)
	lines := strings.Split(string(b), "\n")
	start := slices.IndexFunc(lines, func(l string) bool { return strings.HasSuffix(l, "$ go run mage.go export") })
	if start < 0 {
		t.Fatal("README.md has no `$ go run mage.go export` listing")
	}
	checked := map[string]bool{}
	for n, l := range lines[start+1:] {
		m := readmeOutput.FindStringSubmatch(l)
		if m == nil {
			break
		}
		line := start + 2 + n
		f, ok := written[m[1]]
		if !ok {
			t.Errorf("README.md:%d quotes %s, which the export does not write", line, m[1])
			continue
		}
		delete(written, m[1])
		checked[m[2]] = true
		if !strings.HasPrefix(f.SHA256, m[2]) {
			t.Errorf("README.md:%d quotes %s as sha256:%s…, it is sha256:%s", line, m[1], m[2], f.SHA256)
		}
		if size, _ := strconv.ParseInt(m[3], 10, 64); size != f.Size {
			t.Errorf("README.md:%d quotes %s as %s bytes, it is %d", line, m[1], m[3], f.Size)
		}
	}
	for p, f := range written {
		t.Errorf("README.md does not list %s (sha256:%s, %d bytes) after `$ go run mage.go export`", p, f.SHA256, f.Size)
	}
	for _, m := range regexp.MustCompile(`sha256:([0-9a-f]+)`).FindAllStringSubmatch(string(b), -1) {
		if !checked[m[1]] {
			t.Errorf("README.md quotes sha256:%s outside the export listing: this test does not check it", m[1])
		}
	}

	p, done, err := generate(o)
	if err != nil {
		t.Fatal(err)
	}
	defer done()
	items := map[string]bool{}
	for _, e := range p.Exports {
		for _, s := range e.Systems {
			for _, it := range s.Closure {
				items[string(it.Path)] = true
			}
		}
	}
	for _, sp := range regexp.MustCompile(`/(?:gnu|nix)/store/[0-9a-z]{32}-[^\s/]+`).FindAllString(string(b), -1) {
		if !items[sp] {
			t.Errorf("README.md quotes the store path %s, which is in no closure of the examples", sp)
		}
	}
}

// TestExamplesRun exports the bundled examples, imports the bundle into a
// throwaway Nix store and runs the docker image with podman.
func TestExamplesRun(t *testing.T) {
	o := examples(t)
	files, err := Export(o)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, f := range files {
		out[f.Export] = filepath.Join(o.OutDir, f.Path)
	}

	t.Run("nar imports into Nix", func(t *testing.T) {
		nixStore := oracle.Require(t, "nix-store")
		chroot := t.TempDir()
		f, err := os.Open(out["app-nar"])
		must(t, err)
		defer f.Close()
		cmd := oracle.Nix(t, []string{"NIX_STORE_DIR=/gnu/store", "NIX_STATE_DIR=/var/guix", "NIX_LOG_DIR=/var/log/guix"}, nixStore, "--store", chroot, "--import")
		cmd.Stdin = f
		b := oracle.Output(t, cmd)
		path := strings.TrimSpace(string(b))
		// Nix 2.8 keeps a chroot store's files in ROOT/nix/store whatever
		// its logical store folder.
		run, err := exec.Command(filepath.Join(chroot, "nix", "store", filepath.Base(path))).Output()
		if err != nil || string(run) != "hello from storepack (linux/amd64)\n" {
			t.Errorf("imported %s ran: %q, %v", path, run, err)
		}
	})

	t.Run("multi-arch oci layout", func(t *testing.T) {
		skopeo := oracle.Require(t, "skopeo")
		podman := oracle.Require(t, "podman")
		oracle.Require(t, "runc")
		layout := filepath.Join(o.OutDir, "app-oci")
		for arch, want := range map[string]string{"amd64": "amd64", "arm64": "arm64"} {
			b, err := exec.Command(skopeo, "inspect", "--override-arch", arch, "oci:"+layout+":storepack-example/app:1.0.0").CombinedOutput()
			if err != nil || !strings.Contains(string(b), `"Architecture": "`+want+`"`) {
				t.Errorf("skopeo inspect --override-arch %s: %v\n%s", arch, err, b)
			}
		}
		pull := exec.Command(podman, "pull", "-q", "oci:"+layout+":storepack-example/app:1.0.0")
		var stderr strings.Builder
		pull.Stderr = &stderr
		id, err := pull.Output()
		if err != nil {
			t.Fatalf("podman pull oci:%s: %v\n%s", layout, err, stderr.String())
		}
		image := strings.TrimSpace(string(id))
		t.Cleanup(func() { exec.Command(podman, "rmi", "-f", image).Run() })
		b, runErr, err := oracle.PodmanRun(podman, "--network", "none", image)
		if err != nil || string(b) != "hello, oci (linux/amd64)\n" {
			t.Errorf("podman run of the oci layout's image: %q, %v\n%s", b, err, runErr)
		}
	})

	t.Run("docker image runs in podman", func(t *testing.T) {
		podman := oracle.Require(t, "podman")
		oracle.Require(t, "runc")
		if b, err := exec.Command(podman, "load", "-i", out["app-docker"]).CombinedOutput(); err != nil {
			t.Fatalf("podman load: %v\n%s", err, b)
		}
		const tag = "storepack-example/app:1.0.0"
		t.Cleanup(func() { exec.Command(podman, "rmi", "-f", tag).Run() })
		b, runErr, err := oracle.PodmanRun(podman, "--network", "none", tag)
		if err != nil || string(b) != "hello, docker (linux/amd64)\n" {
			t.Errorf("podman run %s: %q, %v\n%s", tag, b, err, runErr)
		}
	})
	t.Run("tarball extracts and runs under chroot", func(t *testing.T) {
		oracle.RequireRoot(t)
		tar := oracle.Require(t, "tar")
		oracle.Require(t, "chroot")
		root := t.TempDir()
		if b, err := exec.Command(tar, "-xf", out["app-tarball"], "-C", root).CombinedOutput(); err != nil {
			t.Fatalf("tar -xf: %v\n%s", err, b)
		}
		b, err := exec.Command("chroot", root, "/bin/app").CombinedOutput()
		if err != nil || string(b) != "hello from storepack (linux/amd64)\n" {
			t.Errorf("chroot %s /bin/app: %q, %v", root, b, err)
		}
		if _, err := os.Stat(filepath.Join(root, "var/guix/db/db.sqlite")); err != nil {
			t.Errorf("no store database: %v", err)
		}
	})
	t.Run("relocatable tarball runs as nobody from /tmp", func(t *testing.T) {
		oracle.RequireRoot(t)
		tar := oracle.Require(t, "tar")
		setpriv := oracle.Require(t, "setpriv")
		root, err := os.MkdirTemp("/tmp", "storepack-example-")
		must(t, err)
		t.Cleanup(func() { os.RemoveAll(root) })
		must(t, os.Chown(root, 65534, 65534))
		f, err := os.Open(out["app-relocatable"])
		must(t, err)
		defer f.Close()
		nobody := []string{"--reuid=65534", "--regid=65534", "--clear-groups"}
		unpack := exec.Command(setpriv, append(nobody, tar, "-xzf", "-", "-C", root)...)
		unpack.Stdin = f
		if b, err := unpack.CombinedOutput(); err != nil {
			t.Fatalf("tar -xzf as nobody: %v\n%s", err, b)
		}
		for _, run := range []struct {
			args []string
			want string
		}{
			{[]string{root + "/bin/greet"}, "hello, nobody, from the profile's greet\n"},
			{[]string{root + "/bin/sums", "1", "2", "39"}, "42\n"},
		} {
			cmd := exec.Command(setpriv, append(nobody, run.args...)...)
			cmd.Dir = "/tmp"
			if b, err := cmd.CombinedOutput(); err != nil || string(b) != run.want {
				t.Errorf("%v as nobody: %q, %v; want %q", run.args, b, err, run.want)
			}
		}
	})
	t.Run("lintian and rpmlint", func(t *testing.T) {
		oracle.CheckLint(t, oracle.Require(t, "lintian"), out["app-deb"])
		oracle.CheckLint(t, oracle.Require(t, "rpmlint"), out["app-rpm"])
	})
	t.Run("deb installs with dpkg and runs under chroot", func(t *testing.T) {
		oracle.RequireRoot(t)
		dpkg := oracle.Require(t, "dpkg")
		oracle.Require(t, "chroot")
		root := t.TempDir()
		for _, d := range []string{"var/lib/dpkg/info", "var/lib/dpkg/updates"} {
			must(t, os.MkdirAll(filepath.Join(root, d), 0o755))
		}
		must(t, os.WriteFile(filepath.Join(root, "var/lib/dpkg/status"), nil, 0o644))
		if b, err := exec.Command(dpkg, "--root", root, "-i", out["app-deb"]).CombinedOutput(); err != nil {
			t.Fatalf("dpkg -i: %v\n%s", err, b)
		}
		b, err := exec.Command("chroot", root, "/usr/bin/app").CombinedOutput()
		if err != nil || string(b) != "hello from storepack (linux/amd64)\n" {
			t.Errorf("chroot %s /usr/bin/app: %q, %v", root, b, err)
		}
		if b, err := exec.Command(dpkg, "--root", root, "-r", "app").CombinedOutput(); err != nil {
			t.Errorf("dpkg -r: %v\n%s", err, b)
		}
	})
}
