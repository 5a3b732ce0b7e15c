package oracle

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// PrivatePodman is podman with a storage and a state of its own under a
// temporary folder: its graph root, run root, storage.conf and libpod
// temporary folder (--tmpdir). The last matters as much as the storage:
// `podman system reset`, which unmounts a private storage's layers
// before its folder goes, also removes the temporary folder, and a
// shared one (/run/libpod) removed under another test's podman fails
// that podman with "creating runtime status file".
type PrivatePodman struct {
	podman                      string
	root, runRoot, tmpDir, conf string
}

// NewPrivatePodman makes a private podman's folders, root under dir and
// the run root and temporary folder under the system's temporary folder
// (podman takes no run root longer than 50 characters), with partial
// pulls on. Close removes them.
func NewPrivatePodman(podman, dir string) (*PrivatePodman, error) {
	p := &PrivatePodman{podman: podman, root: filepath.Join(dir, "root"), conf: filepath.Join(dir, "storage.conf")}
	var err error
	if p.runRoot, err = os.MkdirTemp("", "sp-run"); err != nil {
		return nil, err
	}
	if p.tmpDir, err = os.MkdirTemp("", "sp-tmp"); err != nil {
		os.RemoveAll(p.runRoot)
		return nil, err
	}
	if err := p.SetPartial(true); err != nil {
		p.Close()
		return nil, err
	}
	return p, nil
}

// SetPartial turns partial pulls on or off: zstd:chunked and eStargz
// layers are then pulled file by file, reusing the files the storage
// holds.
func (p *PrivatePodman) SetPartial(on bool) error {
	if err := os.MkdirAll(filepath.Dir(p.conf), 0o755); err != nil {
		return err
	}
	text := fmt.Sprintf("[storage]\ndriver = \"overlay\"\ngraphroot = %q\nrunroot = %q\n\n[storage.options.pull_options]\nenable_partial_images = \"%v\"\nuse_hard_links = \"true\"\n",
		p.root, p.runRoot, on)
	return os.WriteFile(p.conf, []byte(text), 0o644)
}

// Command is `podman ARGS...` on the private storage and state.
func (p *PrivatePodman) Command(args ...string) *exec.Cmd {
	cmd := exec.Command(p.podman, append([]string{"--root", p.root, "--runroot", p.runRoot, "--tmpdir", p.tmpDir, "--storage-driver", "overlay"}, args...)...)
	cmd.Env = append(os.Environ(), "CONTAINERS_STORAGE_CONF="+p.conf)
	return cmd
}

// Close unmounts the private storage's layers (`podman system reset`)
// and removes its folders outside dir.
func (p *PrivatePodman) Close() error {
	err := p.Command("system", "reset", "--force").Run()
	os.RemoveAll(p.runRoot)
	os.RemoveAll(p.tmpDir)
	return err
}

// BlobBytesServed sums the bytes that log, a registry's access log,
// shows it sent for GET requests of blobs of repo, of the blobs whose
// digest ("sha256:...") counts says to count (every one when nil).
func BlobBytesServed(log, repo string, counts func(digest string) bool) int64 {
	var n int64
	for _, line := range strings.Split(log, "\n") {
		if !strings.Contains(line, "http.request.method=GET") {
			continue
		}
		_, uri, ok := strings.Cut(line, `http.request.uri="/v2/`+repo+`/blobs/`)
		if !ok {
			continue
		}
		d, _, _ := strings.Cut(uri, `"`)
		if counts != nil && !counts(d) {
			continue
		}
		if _, w, ok := strings.Cut(line, "http.response.written="); ok {
			if k, err := strconv.ParseInt(strings.Fields(w)[0], 10, 64); err == nil {
				n += k
			}
		}
	}
	return n
}
