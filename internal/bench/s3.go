package main

import (
	"fmt"
	"go/build"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"
)

// s3Rows prints the figures of binary caches in S3 (versitygw on
// loopback) for the closure root: a zstd publish to the bucket against
// the same export to a folder, a re-publish with nothing changed, the
// publish's peak memory, and an export substituting the closure from the
// bucket against one substituting it from the folder.
func s3Rows(tw *tabwriter.Writer, bin, tmp, root string) {
	srv, stop, err := startS3(tmp)
	if err != nil {
		fmt.Fprintf(tw, "binary cache to S3\t(no S3 server: %v)\n", err)
		return
	}
	defer stop()
	env := append(os.Environ(), "AWS_ACCESS_KEY_ID=bench", "AWS_SECRET_ACCESS_KEY=benchsecret",
		"AWS_EC2_METADATA_DISABLED=true", "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null")
	bucketDir := filepath.Join(srv.dir, "bench")
	check(os.MkdirAll(bucketDir, 0o755)) // versitygw's posix backend: a bucket is a folder
	s3URL := fmt.Sprintf("s3://bench/cache?region=us-east-1&endpoint=%s&scheme=http", srv.addr)
	out := filepath.Join(tmp, "s3-out")
	stdout := filepath.Join(tmp, "s3-stdout")
	keys := filepath.Join(tmp, "s3-keys")
	check(os.MkdirAll(keys, 0o755))
	run(bin, "keygen", "bench-1", filepath.Join(keys, "sec"), filepath.Join(keys, "pub"))
	pub, err := os.ReadFile(filepath.Join(keys, "pub"))
	check(err)

	specDir := func(name, body string) string {
		d := filepath.Join(tmp, "s3-spec-"+name)
		check(os.MkdirAll(d, 0o755))
		check(os.WriteFile(filepath.Join(d, "storepack.hcl"), []byte(body), 0o644))
		return d
	}
	publish := func(output string) string {
		return fmt.Sprintf("store {\n  dir = \"/nix/store\"\n}\n\nexport \"cache\" {\n  format      = \"binary-cache\"\n  paths       = [%q]\n  systems     = [\"x86_64-linux\"]\n  compression = \"zstd\"\n  sign_key    = %q\n  output      = %q\n}\n",
			root, filepath.Join(keys, "sec"), output)
	}
	toS3 := specDir("publish-s3", publish(s3URL))
	toDir := specDir("publish-dir", publish("cache"))
	empty := func() {
		check(os.RemoveAll(out))
		ents, err := os.ReadDir(bucketDir)
		check(err)
		for _, e := range ents {
			check(os.RemoveAll(filepath.Join(bucketDir, e.Name())))
		}
	}
	a := bestWith([]string{bin, "export", "--no-cache", "-C", toS3, "--out", out}, env, stdout, empty)
	b := bestWith([]string{bin, "export", "--no-cache", "-C", toDir, "--out", out}, env, stdout, empty)
	fmt.Fprintf(tw, "binary-cache (zstd) to S3 vs to a folder\t%.3fs\t%.3fs (storepack to a folder)\t%.2f x\t<= 1.3\t%.1f MiB\n",
		a.wall.Seconds(), b.wall.Seconds(), a.wall.Seconds()/b.wall.Seconds(), float64(a.maxKB)/1024)
	fmt.Fprintf(tw, "peak memory of the publish to S3\t\t\t\t< 64 MiB\t%.1f MiB\n", float64(a.maxKB)/1024)
	output(bin, "export", "--no-cache", "-C", toDir, "--out", out) // the folder cache, for the substitution rows; its list of files is not the bench's
	again := bestWith([]string{bin, "export", "--no-cache", "-C", toS3, "--out", out}, env, stdout, func() {})
	fmt.Fprintf(tw, "re-publish to S3, nothing changed\t%.3fs\t\t\t<= 2 s\t%.1f MiB\n", again.wall.Seconds(), float64(again.maxKB)/1024)

	substitute := func(cache string) string {
		empty := filepath.Join(tmp, "s3-empty-store")
		check(os.MkdirAll(empty, 0o755))
		return fmt.Sprintf("store {\n  dir = \"/nix/store\"\n  root = %q\n  db = \"none\"\n  substituters = [%q]\n  trusted_public_keys = [%q]\n}\n\nexport \"bundle\" {\n  format  = \"nar\"\n  paths   = [%q]\n  systems = [\"x86_64-linux\"]\n}\n",
			empty, cache, strings.TrimSpace(string(pub)), root)
	}
	fromS3 := specDir("substitute-s3", substitute(s3URL))
	fromDir := specDir("substitute-dir", substitute("file://"+filepath.Join(out, "cache")))
	xdg := filepath.Join(tmp, "s3-xdg")
	subEnv := append(env, "XDG_CACHE_HOME="+xdg)
	clean := func() { exec.Command("chmod", "-R", "u+w", xdg).Run(); check(os.RemoveAll(xdg)) }
	subOut := filepath.Join(tmp, "s3-sub-out")
	c := bestWith([]string{bin, "export", "--no-cache", "-C", fromS3, "--out", subOut}, subEnv, stdout, clean)
	d := bestWith([]string{bin, "export", "--no-cache", "-C", fromDir, "--out", subOut}, subEnv, stdout, clean)
	clean()
	fmt.Fprintf(tw, "substitute the closure from S3 vs from a folder\t%.3fs\t%.3fs (storepack from a folder)\t%.2f x\t<= 1.3\t%.1f MiB\n",
		c.wall.Seconds(), d.wall.Seconds(), c.wall.Seconds()/d.wall.Seconds(), float64(c.maxKB)/1024)
}

// s3Server is a versitygw on loopback.
type s3Server struct{ addr, dir string }

// startS3 starts versitygw (from PATH or GOPATH/bin) on a loopback port
// with the keys bench/benchsecret, connections kept open between requests
// as S3 keeps them, and its posix backend below tmp.
func startS3(tmp string) (*s3Server, func(), error) {
	bin, err := exec.LookPath("versitygw")
	if err != nil {
		bin = filepath.Join(build.Default.GOPATH, "bin", "versitygw")
		if _, err := os.Stat(bin); err != nil {
			return nil, nil, fmt.Errorf("versitygw is not installed (GOFLAGS= go install github.com/versity/versitygw/cmd/versitygw@v1.8.0)")
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, err
	}
	s := &s3Server{addr: l.Addr().String(), dir: filepath.Join(tmp, "s3-data")}
	l.Close()
	if err := os.MkdirAll(s.dir, 0o755); err != nil {
		return nil, nil, err
	}
	// --keep-alive: versitygw closes every connection after its answer
	// unless told otherwise, where S3 (and MinIO, Ceph's gateway) keep
	// them open; without it each request of a publish is a new
	// connection on both sides.
	cmd := exec.Command(bin, "--port", s.addr, "--access", "bench", "--secret", "benchsecret", "--region", "us-east-1", "--keep-alive", "--quiet", "posix", s.dir)
	if err := cmd.Start(); err != nil {
		return nil, nil, err
	}
	stop := func() { cmd.Process.Kill(); cmd.Wait() }
	for range 200 {
		if c, err := net.Dial("tcp", s.addr); err == nil {
			c.Close()
			return s, stop, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	stop()
	return nil, nil, fmt.Errorf("versitygw did not listen on %s", s.addr)
}
