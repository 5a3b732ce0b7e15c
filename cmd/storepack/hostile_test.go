package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// hostileCache exports, with the built command, the source of faultDir
// (one file of size bytes) as a binary cache compressed as compression
// and signed with a new key; it returns the cache folder, the public key
// and the source's store path.
func hostileCache(t *testing.T, compression string, size int) (cache, pub, storePath string) {
	t.Helper()
	keys := t.TempDir()
	sec := filepath.Join(keys, "secret")
	pubFile := filepath.Join(keys, "public")
	ok(t, nil, "keygen", "hostile-1", sec, pubFile)
	b, _ := os.ReadFile(pubFile)
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "storepack.hcl"), `store {
  dir = "/nix/store"
  db  = "none"
}

source "data" {
  path = "data"
}

export "cache" {
  format      = "binary-cache"
  paths       = [source.data.store_path]
  compression = "`+compression+`"
  sign_key    = "`+sec+`"
}
`)
	fillData(t, filepath.Join(dir, "data"), 1, size)
	out := filepath.Join(t.TempDir(), "out")
	ok(t, nil, "export", "-q", "-C", dir, "--out", out)
	cache = filepath.Join(out, "cache")
	infos, _ := filepath.Glob(filepath.Join(cache, "*.narinfo"))
	if len(infos) != 1 {
		t.Fatalf("%d narinfos", len(infos))
	}
	return cache, strings.TrimSpace(string(b)), narinfoField(t, infos[0], "StorePath")
}

// narinfoField is the value of key in the narinfo file.
func narinfoField(t *testing.T, file, key string) string {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), key+": "); ok {
			return v
		}
	}
	t.Fatalf("%s has no %s", file, key)
	return ""
}

// narFile is the NAR file of the cache's only narinfo.
func narFile(t *testing.T, cache string) string {
	infos, _ := filepath.Glob(filepath.Join(cache, "*.narinfo"))
	return filepath.Join(cache, narinfoField(t, infos[0], "URL"))
}

// limited runs the built command under a 2.5 GiB address space (the Go
// runtime reserves some 1.5 GiB at start; a 4 GiB dictionary cannot fit) and a
// 60 s wall clock (prlimit and timeout: bounds outside the test).
func limited(t *testing.T, args ...string) result {
	t.Helper()
	for _, tool := range []string{"prlimit", "timeout"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("no %s", tool)
		}
	}
	cmd := exec.Command("prlimit", append([]string{"--as=2684354560", "timeout", "60", bin}, args...)...)
	cmd.Env = cleanEnv()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := result{stdout.Bytes(), stderr.Bytes(), 0}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestVerifyCacheHostile: verify-cache of hostile caches ends, within a
// 2.5 GiB address space and 60 s, with exit 1 and an error naming the
// file: an xz NAR expanding far past its NarSize, a valid xz NAR whose
// header declares a 4 GiB dictionary, NAR files and narinfos linked to
// /dev/zero or FIFOs.
func TestVerifyCacheHostile(t *testing.T) {
	xzCmd, err := exec.LookPath("xz")
	if err != nil {
		t.Skip("no xz")
	}
	for _, tt := range []struct {
		name  string
		spoil func(t *testing.T, cache string) string // the file the error names
		want  string
	}{
		{"xz bomb", func(t *testing.T, cache string) string {
			nar := narFile(t, cache)
			cmd := exec.Command("sh", "-c", "head -c 300000000 /dev/zero | "+xzCmd+" -1 -T1 > "+nar)
			if b, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("%v: %s", err, b)
			}
			return nar
		}, "the NAR, longer than its NarSize: more than 1048856 bytes: too large"},
		{"4 GiB dictionary", func(t *testing.T, cache string) string {
			nar := narFile(t, cache)
			x, err := os.ReadFile(nar)
			if err != nil {
				t.Fatal(err)
			}
			hdr := x[12 : 12+(int(x[12])+1)*4]
			i := bytes.Index(hdr, []byte{0x21, 0x01})
			hdr[i+2] = 40
			binary.LittleEndian.PutUint32(hdr[len(hdr)-4:], crc32.ChecksumIEEE(hdr[:len(hdr)-4]))
			os.WriteFile(nar, x, 0o644)
			return nar
		}, "the file's hash is"}, // decoded whole: only the file hash differs
		{"NAR linked to /dev/zero", func(t *testing.T, cache string) string {
			nar := narFile(t, cache)
			os.Remove(nar)
			os.Symlink("/dev/zero", nar)
			return nar
		}, "not a regular file (a character device)"},
		{"NAR a FIFO", func(t *testing.T, cache string) string {
			nar := narFile(t, cache)
			os.Remove(nar)
			syscall.Mkfifo(nar, 0o644)
			return nar
		}, "not a regular file (a FIFO)"},
		{"narinfo linked to /dev/zero", func(t *testing.T, cache string) string {
			infos, _ := filepath.Glob(filepath.Join(cache, "*.narinfo"))
			os.Remove(infos[0])
			os.Symlink("/dev/zero", infos[0])
			return infos[0]
		}, "not a regular file (a character device)"},
		{"narinfo too large", func(t *testing.T, cache string) string {
			infos, _ := filepath.Glob(filepath.Join(cache, "*.narinfo"))
			f, _ := os.OpenFile(infos[0], os.O_APPEND|os.O_WRONLY, 0)
			f.Write(bytes.Repeat([]byte("Sig: x\n"), 200000))
			f.Close()
			return infos[0]
		}, "too large"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cache, pub, _ := hostileCache(t, "xz", 1<<20)
			file := tt.spoil(t, cache)
			r := limited(t, "verify-cache", cache, "--key", pub)
			if r.code != 1 || !strings.Contains(string(r.stderr), tt.want) || !strings.Contains(string(r.stderr), file) {
				t.Errorf("exit %d, stderr %s; want 1 and %q naming %s", r.code, r.stderr, tt.want, file)
			}
		})
	}
}

// substituterSpec writes a spec whose empty store takes the item p from
// the substituter url, exporting it as a nar.
func substituterSpec(t *testing.T, url, pub, p string) string {
	t.Helper()
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "storepack.hcl"), `store {
  dir                 = "/nix/store"
  root                = "`+t.TempDir()+`"
  db                  = "none"
  substituters        = ["`+url+`"]
  trusted_public_keys = ["`+pub+`"]
}

export "item" {
  format = "nar"
  paths  = ["`+p+`"]
}
`)
	return dir
}

// stallingServer serves cache, but sends only the first 64 KiB of NAR
// files and then nothing, or, with trickle, a byte every 100 ms.
func stallingServer(t *testing.T, cache string, trickle bool) (url string, requested chan struct{}) {
	requested = make(chan struct{}, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := os.ReadFile(filepath.Join(cache, filepath.FromSlash(strings.TrimPrefix(r.URL.Path, "/"))))
		if err != nil {
			http.NotFound(w, r)
			return
		}
		if !strings.HasPrefix(r.URL.Path, "/nar/") {
			w.Write(b)
			return
		}
		w.Write(b[:64<<10])
		w.(http.Flusher).Flush()
		requested <- struct{}{}
		for i := 64 << 10; trickle && i < len(b); i++ {
			select {
			case <-r.Context().Done():
				return
			case <-time.After(100 * time.Millisecond):
			}
			w.Write(b[i : i+1])
			w.(http.Flusher).Flush()
		}
		<-r.Context().Done()
	}))
	t.Cleanup(srv.Close)
	return srv.URL, requested
}

// substitutesLeft lists the temporary folders in the substitutes cache of
// xdg.
func substitutesLeft(t *testing.T, xdg string) []string {
	ents, _ := os.ReadDir(filepath.Join(xdg, "storepack", "substitutes"))
	var out []string
	for _, e := range ents {
		if strings.Contains(e.Name(), ".tmp-") {
			out = append(out, e.Name())
		}
	}
	return out
}

// TestInterruptAndTimeout: SIGINT or SIGTERM while a substituted NAR
// downloads ends the export with 128 + the signal and no temporary
// folder in the substitutes cache; --timeout ends one that trickles (a
// byte every 100 ms: never idle) with exit 1 and the reason.
func TestInterruptAndTimeout(t *testing.T) {
	cache, pub, p := hostileCache(t, "none", 4<<20)
	for _, tt := range []struct {
		name    string
		sig     syscall.Signal
		timeout string
	}{
		{"SIGINT", syscall.SIGINT, ""},
		{"SIGTERM", syscall.SIGTERM, ""},
		{"--timeout", 0, "2s"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			url, requested := stallingServer(t, cache, tt.timeout != "")
			dir := substituterSpec(t, url, pub, p)
			xdg := t.TempDir()
			out := filepath.Join(t.TempDir(), "out")
			args := []string{"export", "-q", "-C", dir, "--out", out}
			if tt.timeout != "" {
				args = append(args, "--timeout", tt.timeout)
			}
			cmd := exec.Command("timeout", append([]string{"60", bin}, args...)...)
			cmd.Env = append(cleanEnv(), "XDG_CACHE_HOME="+xdg)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			<-requested
			time.Sleep(100 * time.Millisecond)
			if left := substitutesLeft(t, xdg); len(left) == 0 {
				t.Error("no temporary folder while the NAR downloads")
			}
			if tt.sig != 0 {
				// timeout(1) passes the signal on to storepack.
				cmd.Process.Signal(tt.sig)
			}
			err := cmd.Wait()
			code := 0
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				code = ee.ExitCode()
			}
			want, msg := 128+int(tt.sig), "interrupted"
			if tt.sig == 0 {
				want, msg = 1, "timed out after 2s (--timeout)"
			}
			if code != want || !strings.Contains(stderr.String(), msg) {
				t.Errorf("exit %d, stderr %s; want %d and %q", code, stderr.Bytes(), want, msg)
			}
			if left := substitutesLeft(t, xdg); len(left) != 0 {
				t.Errorf("left %s in the substitutes cache", left)
			}
			if ents, _ := os.ReadDir(out); len(ents) > 1 {
				t.Errorf("left %d entries in the output folder", len(ents))
			}
		})
	}
}

// TestSubstitutesWithoutCache: with --no-cache, or a cache folder that
// cannot be made (reported on stderr), an export with substituters
// works, its items unpacked into a temporary folder removed at its end.
func TestSubstitutesWithoutCache(t *testing.T) {
	cache, pub, p := hostileCache(t, "xz", 1<<16)
	dir := substituterSpec(t, "file://"+cache, pub, p)
	for _, tt := range []struct {
		name   string
		xdg    func(t *testing.T) string
		args   []string
		stderr string
	}{
		{"--no-cache", func(t *testing.T) string { return t.TempDir() }, []string{"--no-cache"}, ""},
		{"unwritable cache", func(t *testing.T) string {
			f := filepath.Join(t.TempDir(), "a-file")
			writeFile(t, f, "")
			return f // no folder can be made below a file
		}, nil, "not using the substitutes cache"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			xdg := tt.xdg(t)
			out := filepath.Join(t.TempDir(), "out")
			tmp := t.TempDir()
			cmd := exec.Command(bin, append([]string{"export", "-q", "-C", dir, "--out", out}, tt.args...)...)
			cmd.Env = append(cleanEnv(), "XDG_CACHE_HOME="+xdg, "TMPDIR="+tmp)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Run(); err != nil {
				t.Fatalf("%v\n%s", err, stderr.Bytes())
			}
			if tt.stderr == "" && stderr.Len() > 0 || !strings.Contains(stderr.String(), tt.stderr) {
				t.Errorf("stderr %q, want %q", stderr.Bytes(), tt.stderr)
			}
			if _, err := os.Stat(filepath.Join(out, "item.nar")); err != nil {
				t.Error(err)
			}
			if ents, _ := os.ReadDir(filepath.Join(xdg, "storepack", "substitutes")); len(ents) != 0 {
				t.Errorf("the cache holds %d entries", len(ents))
			}
			if ents, _ := os.ReadDir(tmp); len(ents) != 0 {
				t.Errorf("left %d temporary entries", len(ents))
			}
		})
	}
}

// TestErrorsEscaped: a name with control characters reaches stderr
// escaped, whatever message quotes it.
func TestErrorsEscaped(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cache\x1b[2J\x1b]0;owned\a")
	r := storepack(t, nil, "verify-cache", dir, "--key", "k-1:"+strings.Repeat("A", 43)+"=")
	if r.code != 1 || bytes.ContainsAny(r.stderr, "\x1b\a") || !strings.Contains(string(r.stderr), `cache\x1b[2J\x1b]0;owned\a`) {
		t.Errorf("exit %d, stderr %q; want 1 and the name escaped", r.code, r.stderr)
	}
}

// TestInterruptMidExport: SIGINT while an export writes its output (a
// binary whose grace is 0 s, so that the export cannot finish in it)
// exits 130, removes the temporary output and leaves the previous output
// intact.
func TestInterruptMidExport(t *testing.T) {
	quick := filepath.Join(t.TempDir(), "storepack-quick")
	build := exec.Command("go", "build", "-ldflags=-X=main.interruptWait=0s", "-o", quick, ".")
	if b, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	for _, format := range []string{"nar", "docker"} {
		t.Run(format, func(t *testing.T) {
			dir := faultDir(t, format, 2, 1<<20)
			out := filepath.Join(t.TempDir(), "out")
			final := filepath.Join(out, map[string]string{"nar": "data.nar", "docker": "data.tar"}[format])
			if r := runCmd(t, exportCmd(dir, out)); r.code != 0 {
				t.Fatalf("first export: exit %d\n%s", r.code, r.stderr)
			}
			before := fileSum(final)
			fillData(t, filepath.Join(dir, "data"), 50, 4<<20) // 200 MB
			cmd := exec.Command(quick, "export", "-q", "-C", dir, "--out", out)
			cmd.Env = cleanEnv()
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(2 * time.Minute)
			for len(tempFiles(t, out)) == 0 && time.Now().Before(deadline) {
				time.Sleep(2 * time.Millisecond)
			}
			cmd.Process.Signal(syscall.SIGINT)
			err := cmd.Wait()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 130 || !strings.Contains(stderr.String(), "interrupted") {
				t.Fatalf("exit %v, stderr %s; want 130 and interrupted", err, stderr.Bytes())
			}
			if left := tempFiles(t, out); len(left) != 0 {
				t.Errorf("left %s", left)
			}
			if got := fileSum(final); got != before {
				t.Errorf("%s changed under an interrupted export", final)
			}
		})
	}
}
