package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/storepack/storepack/internal/oracle"
)

// progressSpec is specDir's spec with a second export, a docker archive.
func progressSpec(t *testing.T) string {
	t.Helper()
	dir := specDir(t)
	docker := `export "app-docker" {
  format  = "docker"
  paths   = [source.app.store_path]
  systems = ["x86_64-linux"]
}
`
	if err := os.WriteFile(filepath.Join(dir, "docker.hcl"), []byte(docker), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestExportProgress runs export with stderr a pipe: plain lines (a line
// when each export starts and one when it is done, no carriage return),
// or nothing at all with -q or STOREPACK_QUIET=1; stdout lists the files
// written either way.
func TestExportProgress(t *testing.T) {
	dir := progressSpec(t)
	plainLine := regexp.MustCompile(`^storepack: export ([a-z-]+): (\d+ items?, [\d.]+ k?B|done in \d+ms: [\d.]+ k?B, \d+ items?, [\d.]+ [kMG]?B/s)$`)
	// Every export of the spec, in plan order: images, a bundle and the
	// file system trees.
	exports := []string{"app", "app-docker", "deb", "rpm", "squashfs", "tarball"}
	tests := []struct {
		name  string
		args  []string
		env   []string
		quiet bool
	}{
		{"plain lines", nil, []string{"STOREPACK_QUIET="}, false},
		{"-q", []string{"-q"}, nil, true},
		{"STOREPACK_QUIET=1", nil, []string{"STOREPACK_QUIET=1"}, true},
		{"-q with STOREPACK_QUIET=0", []string{"-q"}, []string{"STOREPACK_QUIET=0"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out")
			args := append([]string{"export", "-C", dir, "--out", out}, tt.args...)
			r := storepackEnv(t, tt.env, args...)
			if r.code != 0 {
				t.Fatalf("exit %d\n%s", r.code, r.stderr)
			}
			if got := string(r.stdout); !strings.HasPrefix(got, out+"/app.nar\tsha256:") || !strings.Contains(got, "\n"+out+"/app-docker.tar\tsha256:") {
				t.Errorf("stdout does not list the two files:\n%s", got)
			}
			stderr := string(r.stderr)
			if tt.quiet {
				if stderr != "" {
					t.Errorf("stderr is not empty:\n%q", stderr)
				}
				return
			}
			if strings.Contains(stderr, "\r") {
				t.Errorf("plain lines hold a carriage return:\n%q", stderr)
			}
			lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
			for _, l := range lines {
				if !plainLine.MatchString(l) {
					t.Errorf("not a plain progress line: %q", l)
				}
			}
			if len(lines) != 2*len(exports) {
				t.Fatalf("want a start and a done line per export, in plan order:\n%s", stderr)
			}
			for i, name := range exports {
				start, done := plainLine.FindStringSubmatch(lines[2*i]), plainLine.FindStringSubmatch(lines[2*i+1])
				if start == nil || done == nil || start[1] != name || done[1] != name || strings.HasPrefix(start[2], "done") || !strings.HasPrefix(done[2], "done") {
					t.Errorf("lines %d and %d: %q, %q; want %s starting, then done", 2*i, 2*i+1, lines[2*i], lines[2*i+1], name)
				}
			}
		})
	}
}

// TestExportProgressTerminal runs export on a pseudo-terminal (script
// from util-linux) with a binary whose bar shows at once instead of after
// a second: the bar is drawn with a carriage return and replaced by the
// final line of each export.
func TestExportProgressTerminal(t *testing.T) {
	script := oracle.Require(t, "script")
	tty := filepath.Join(t.TempDir(), "storepack-tty")
	build := exec.Command("go", "build", "-ldflags=-X=main.progressDelay=-1s", "-o", tty, ".")
	if b, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	dir := progressSpec(t)
	out := filepath.Join(t.TempDir(), "out")
	for _, tc := range []struct {
		name  string
		flags string
		bar   bool
	}{{"bar", "", true}, {"-q", " -q", false}} {
		t.Run(tc.name, func(t *testing.T) {
			// script runs the command on a new pseudo-terminal and copies
			// what it prints to its stdout; -e passes on its exit status.
			cmd := exec.Command(script, "-q", "-e", "-c", tty+" export"+tc.flags+" -C "+dir+" --out "+out, "/dev/null")
			cmd.Env = append(cleanEnv(), "STOREPACK_QUIET=", "COLUMNS=100")
			r := runCmd(t, cmd)
			if r.code != 0 {
				t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
			}
			got := string(r.stdout)
			bar := regexp.MustCompile(`\rapp-docker  \[[=> ]+\]  [\d.]+/[\d.]+ k?B  \d/\d items`)
			done := regexp.MustCompile(`\rapp  done in \d+ms: [\d.]+ kB, \d+ items?, [\d.]+ [kMG]?B/s *\r?\n`)
			if tc.bar != (bar.MatchString(got) && done.MatchString(got)) {
				t.Errorf("the terminal shows a bar and final lines: %v, want %v:\n%q", !tc.bar, tc.bar, got)
			}
			if strings.Contains(got, "storepack: export") {
				t.Errorf("plain lines on a terminal:\n%q", got)
			}
			if !strings.Contains(got, out+"/app.nar\tsha256:") {
				t.Errorf("the files written are not listed:\n%q", got)
			}
		})
	}
}
