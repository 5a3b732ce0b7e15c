package oracle

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"os/exec"
)

// PodmanRun runs `podman run ARGS...` (options, then the image and its
// command), removes the container after and returns what it printed on
// standard output and standard error. It does not pass --rm: podman 4.3's
// --rm can lose the exit code of a container that has just exited,
// failing the run after the program's output with "no such exit code"
// (containers/podman#14859).
func PodmanRun(podman string, args ...string) (stdout, stderr []byte, err error) {
	b := make([]byte, 8)
	rand.Read(b)
	name := "storepack-test-" + hex.EncodeToString(b)
	cmd := exec.Command(podman, append([]string{"run", "--name", name}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	exec.Command(podman, "rm", "--force", name).Run()
	return out.Bytes(), errb.Bytes(), err
}
