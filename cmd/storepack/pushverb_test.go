package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/storepack/storepack/internal/oracle"
)

func TestPushVerb(t *testing.T) {
	host := oracle.StartRegistry(t).Host
	dir := specDir(t)
	oci := `export "image" {
  format      = "oci"
  paths       = [source.app.store_path]
  systems     = ["x86_64-linux", "aarch64-linux"]
  tag         = "app:1.0"
  compression = "gzip"
  push        = "` + host + `/team/app:1.0"
  insecure    = true
}
`
	if err := os.WriteFile(filepath.Join(dir, "image.hcl"), []byte(oci), 0o644); err != nil {
		t.Fatal(err)
	}
	line := regexp.MustCompile(`^` + regexp.QuoteMeta(host) + `/team/app:1.0\tsha256:[0-9a-f]{64}\t(\d+) layer blobs uploaded, (\d+) already there\n$`)
	var first string
	for i, want := range []string{"uploaded", "skipped"} {
		var stdout, stderr bytes.Buffer
		if code := run([]string{"push", "-C", dir}, nil, &stdout, &stderr); code != 0 {
			t.Fatalf("push %d: exit %d: %s", i, code, stderr.String())
		}
		m := line.FindStringSubmatch(stdout.String())
		if m == nil {
			t.Fatalf("push %d printed %q", i, stdout.String())
		}
		if want == "uploaded" && (m[1] == "0" || m[2] != "0") || want == "skipped" && (m[1] != "0" || m[2] == "0") {
			t.Errorf("push %d: %s uploaded, %s already there; want every layer %s", i, m[1], m[2], want)
		}
		digest := strings.Split(stdout.String(), "\t")[1]
		if i == 0 {
			first = digest
		} else if digest != first {
			t.Errorf("the second push sent %s, the first %s", digest, first)
		}
	}
	// A named export without a push reference is an error.
	var stdout, stderr bytes.Buffer
	if code := run([]string{"push", "-C", dir, "app"}, nil, &stdout, &stderr); code != 1 || !strings.Contains(stderr.String(), `export "app" has no push reference`) {
		t.Errorf("push of the nar export: exit %d, %s", code, stderr.String())
	}
}
