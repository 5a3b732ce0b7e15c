package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// specDir writes a spec over gen's testdata chroot store: a source that
// refers to a store item, exported as a nar bundle.
func specDir(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("../../gen/testdata/root")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	files := map[string]string{
		"storepack.hcl": `variable "version" {
  type    = string
  default = "1.0"
}

store {
  dir  = "/gnu/store"
  root = "` + root + `"
  db   = "none"
}

source "app" {
  path = "app"
  name = "app-${var.version}"
}
`,
		"exports.hcl": `export "app" {
  format  = "nar"
  paths   = [source.app.store_path]
  systems = ["x86_64-linux"]
}
`,
		// One export of each file system tree format, with the database:
		// TestExportReproducible compares them too.
		"trees.hcl": `locals {
  hello = "/gnu/store/qvzbpnllxraamdsh8qmz8rsp7xrsnj9q-hello-2.12"
}

export "tarball" {
  format   = "tarball"
  paths    = [local.hello, source.app.store_path]
  systems  = ["x86_64-linux"]
  database = true
}

export "squashfs" {
  format     = "squashfs"
  paths      = [local.hello]
  systems    = ["x86_64-linux"]
  entrypoint = ["${local.hello}/bin/hello"]
  database   = true
}

export "deb" {
  format  = "deb"
  paths   = [local.hello]
  systems = ["x86_64-linux"]
  package {
    version    = var.version
    maintainer = "Tests <tests@example.org>"
  }
}

export "rpm" {
  format  = "rpm"
  paths   = [local.hello]
  systems = ["x86_64-linux"]
  package {
    version = var.version
  }
}
`,
		"app/run.sh": "exec /gnu/store/qvzbpnllxraamdsh8qmz8rsp7xrsnj9q-hello-2.12/bin/hello\n",
	}
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestSpecVerbs(t *testing.T) {
	dir := specDir(t)
	out := filepath.Join(t.TempDir(), "out")

	if got := string(ok(t, nil, "validate", "-C", dir)); got != "the spec is valid\n" {
		t.Errorf("validate printed %q", got)
	}
	plan := ok(t, nil, "plan", "-C", dir, "--var", "version=2.0")
	if !bytes.HasPrefix(plan, []byte("{\n")) || !bytes.Contains(plan, []byte(`-app-2.0"`)) {
		t.Errorf("plan is not the JSON plan with version 2.0:\n%s", plan)
	}
	exported := string(ok(t, nil, "export", "-q", "-C", dir, "--out", out))
	if !strings.HasPrefix(exported, out+"/app.nar\tsha256:") {
		t.Errorf("export printed %q", exported)
	}
	if _, err := os.Stat(filepath.Join(out, "app.nar")); err != nil {
		t.Fatal(err)
	}

	ok(t, nil, "lock", "-C", dir)
	ok(t, nil, "verify", "-C", dir)
	if err := os.WriteFile(filepath.Join(dir, "app", "run.sh"), []byte("exec true\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	r := storepack(t, nil, "verify", "-C", dir)
	if r.code != 1 || !strings.Contains(string(r.stderr), "exports app, tarball differ") || !strings.Contains(string(r.stderr), "(-want +got)") {
		t.Errorf("verify after a change: exit %d, stderr:\n%s", r.code, r.stderr)
	}
}

func TestSpecDiagnostics(t *testing.T) {
	dir := specDir(t)
	bad := "export \"x\" {\n  format     = \"docker\"\n  paths      = [\"/nix/store/x\"]\n  max_layers = 500\n}\n"
	if err := os.WriteFile(filepath.Join(dir, "bad.hcl"), []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "out")
	r := storepack(t, nil, "export", "-C", dir, "--out", out)
	if r.code != 1 {
		t.Fatalf("export of a broken spec: exit %d, want 1", r.code)
	}
	for _, want := range []string{"bad.hcl:3:", "bad.hcl:4:", "max_layers", "the spec has errors"} {
		if !strings.Contains(string(r.stderr), want) {
			t.Errorf("stderr lacks %q:\n%s", want, r.stderr)
		}
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("a broken spec created the output folder (stat: %v)", err)
	}
}

func TestFmt(t *testing.T) {
	dir := specDir(t)
	ugly := "export \"y\" {\nformat=\"nar\"\n  paths = [ \"/gnu/store/9zbcl14iyclshi05nwjk9z9cbvllybap-tzdata\" ]\n}\n"
	p := filepath.Join(dir, "ugly.hcl")
	if err := os.WriteFile(p, []byte(ugly), 0o644); err != nil {
		t.Fatal(err)
	}
	r := storepack(t, nil, "fmt", "-check", "-C", dir)
	if r.code != 1 || strings.TrimSpace(string(r.stdout)) != p {
		t.Errorf("fmt -check: exit %d, stdout %q; want 1 and %s", r.code, r.stdout, p)
	}
	if b, _ := os.ReadFile(p); string(b) != ugly {
		t.Error("fmt -check rewrote the file")
	}
	ok(t, nil, "fmt", "-C", dir)
	ok(t, nil, "fmt", "-check", "-C", dir)
	if b, _ := os.ReadFile(p); !strings.Contains(string(b), "  format = \"nar\"") {
		t.Errorf("fmt did not format:\n%s", b)
	}
}

// TestExportReproducible: the same spec gives the same bytes whatever the
// time zone, umask, working directory, GOMAXPROCS and source mtimes.
func TestExportReproducible(t *testing.T) {
	dir := specDir(t)
	// With SBOMs, provenance and ed25519 signatures: those are the same
	// bytes too.
	supplySpec(t, dir, "")
	variants := []struct {
		name string
		env  []string
		cwd  string
		pre  func()
	}{
		{name: "base", env: []string{"TZ=UTC", "GOMAXPROCS=2"}, cwd: "/"},
		{name: "other", env: []string{"TZ=Asia/Kathmandu", "GOMAXPROCS=1", "LANG=de_DE.UTF-8"}, cwd: t.TempDir(), pre: func() {
			old := filepath.Join(dir, "app", "run.sh")
			if err := os.Chtimes(old, time0, time0); err != nil {
				t.Fatal(err)
			}
		}},
	}
	var first map[string][]byte
	for _, v := range variants {
		if v.pre != nil {
			v.pre()
		}
		out := filepath.Join(t.TempDir(), "out")
		umask := "022"
		if v.name == "other" {
			umask = "077"
		}
		cmd := exec.Command("/bin/sh", "-c", "umask "+umask+" && exec \"$0\" \"$@\"", bin, "export", "-C", dir, "--out", out)
		cmd.Env = append(cleanEnv(), v.env...)
		cmd.Dir = v.cwd
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", v.name, err, b)
		}
		got := readTree(t, out)
		if first == nil {
			first = got
			continue
		}
		for name, b := range first {
			if !bytes.Equal(b, got[name]) {
				t.Errorf("%s: %s differs from the first run", v.name, name)
			}
		}
		if len(got) != len(first) {
			t.Errorf("%s: %d files, first run had %d", v.name, len(got), len(first))
		}
	}
}

func readTree(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(dir, p)
		files[rel+" "+fi.Mode().String()] = b
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// time0 is an mtime far from the present, for sources touched between runs.
var time0 = mustTime("2001-02-03T04:05:06Z")

func mustTime(s string) time.Time {
	tm, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return tm
}

// TestDirFlag: -C DIR runs as if started in DIR, as git -C does: the
// spec, the default output folder, a relative --out, storepack.lock and
// fmt's files are taken from DIR, and nothing is written where the
// command was started.
func TestDirFlag(t *testing.T) {
	dir := specDir(t)
	elsewhere := t.TempDir()
	runIn := func(args ...string) result {
		t.Helper()
		cmd := exec.Command(bin, args...)
		cmd.Env = cleanEnv()
		cmd.Dir = elsewhere
		r := runCmd(t, cmd)
		if r.code != 0 {
			t.Fatalf("storepack %s: exit %d\n%s", strings.Join(args, " "), r.code, r.stderr)
		}
		return r
	}
	r := runIn("export", "-q", "-C", dir)
	if want := filepath.Join(dir, "out", "app.nar"); !strings.HasPrefix(string(r.stdout), want+"\t") {
		t.Errorf("export -C printed %q, want %s first", r.stdout, want)
	}
	if _, err := os.Stat(filepath.Join(dir, "out", "app.nar")); err != nil {
		t.Errorf("export -C DIR did not write DIR/out: %v", err)
	}
	runIn("export", "-q", "-C", dir, "--out", "rel")
	if _, err := os.Stat(filepath.Join(dir, "rel", "app.nar")); err != nil {
		t.Errorf("export -C DIR --out rel did not write DIR/rel: %v", err)
	}
	runIn("lock", "-C", dir)
	if _, err := os.Stat(filepath.Join(dir, "storepack.lock")); err != nil {
		t.Errorf("lock -C DIR did not write DIR/storepack.lock: %v", err)
	}
	runIn("verify", "-C", dir)
	ugly := "export \"y\" {\nformat=\"nar\"\n  paths = [ \"/gnu/store/9zbcl14iyclshi05nwjk9z9cbvllybap-tzdata\" ]\n}\n"
	if err := os.WriteFile(filepath.Join(dir, "ugly.hcl"), []byte(ugly), 0o644); err != nil {
		t.Fatal(err)
	}
	runIn("fmt", "-C", dir, "ugly.hcl")
	if b, _ := os.ReadFile(filepath.Join(dir, "ugly.hcl")); string(b) == ugly {
		t.Error("fmt -C DIR FILE did not format DIR/FILE")
	}
	if des, _ := os.ReadDir(elsewhere); len(des) != 0 {
		t.Errorf("the commands wrote %d entries where they were started", len(des))
	}
}
