package oracle

import (
	"fmt"
	"strconv"
	"strings"
)

// PodmanStorageConf is a containers-storage.conf(5) for a podman storage
// of its own (overlay, at graphroot and runroot) with partial pulls on or
// off: zstd:chunked and eStargz layers are then pulled file by file,
// reusing the files the storage holds.
func PodmanStorageConf(graphroot, runroot string, partial bool) string {
	return fmt.Sprintf("[storage]\ndriver = \"overlay\"\ngraphroot = %q\nrunroot = %q\n\n[storage.options.pull_options]\nenable_partial_images = \"%v\"\nuse_hard_links = \"true\"\n",
		graphroot, runroot, partial)
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
