// Package oracle finds the real tools that storepack's output is checked
// against (Nix, skopeo, umoci, podman, a registry, containerd, cosign,
// regctl, oras, lintian, rpmlint) for tests. A missing tool
// fails the test when STOREPACK_ORACLES=require (as in CI) and skips it,
// naming the tool and its Debian package, otherwise: never silently.
package oracle

import (
	"go/build"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// RequireEnv is the variable that makes a missing tool a test failure.
const RequireEnv = "STOREPACK_ORACLES"

// packages names the Debian package that provides each tool.
var packages = map[string]string{
	"nix-store":       "nix-bin",
	"nix-hash":        "nix-bin",
	"nix-build":       "nix-bin",
	"nix-instantiate": "nix-bin",
	"nix":             "nix-bin",
	"skopeo":          "skopeo",
	"umoci":           "umoci",
	"podman":          "podman",
	"runc":            "runc",
	"docker-registry": "docker-registry",
	"busybox":         "busybox-static",
	"script":          "bsdutils",
	"mkfs.xfs":        "xfsprogs",
	"mkfs.btrfs":      "btrfs-progs",
	"tar":             "tar",
	"gzip":            "gzip",
	"zstd":            "zstd",
	"xz":              "xz-utils",
	"chroot":          "coreutils",
	"unsquashfs":      "squashfs-tools",
	"mksquashfs":      "squashfs-tools",
	"dpkg":            "dpkg",
	"dpkg-deb":        "dpkg",
	"rpm":             "rpm",
	"containerd":      "containerd",
	"ctr":             "containerd",
	"lintian":         "lintian",
	"rpmlint":         "rpmlint",
	"python3":         "python3",
	"setpriv":         "util-linux",
	"gcc":             "gcc",
	"readelf":         "binutils",
	"qemu-i386":       "qemu-user",
	"qemu-arm":        "qemu-user",
	"qemu-aarch64":    "qemu-user",
	"qemu-mips64el":   "qemu-user",
	"qemu-ppc64le":    "qemu-user",
	"qemu-riscv64":    "qemu-user",
	"qemu-s390x":      "qemu-user",
}

// goInstalled are the tools built from the Go module proxy, with the
// command that installs them into GOPATH/bin.
var goInstalled = map[string]string{
	"cosign":    "go install github.com/sigstore/cosign/v2/cmd/cosign@v2.6.5",
	"regctl":    "go install github.com/regclient/regclient/cmd/regctl@v0.11.7",
	"oras":      "go install oras.land/oras/cmd/oras@v1.3.6",
	"versitygw": "go install github.com/versity/versitygw/cmd/versitygw@v1.8.0",
}

// Required reports whether missing tools must fail tests.
func Required() bool { return os.Getenv(RequireEnv) == "require" }

// RequireRoot stops the test unless it runs as root (what extracting a
// tree with its owners and chroot need): a failure when tools are
// required, a skip otherwise.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if Required() {
		t.Fatalf("this test must run as root (as CI does), and %s=require says it must run", RequireEnv)
	}
	t.Skipf("this test must run as root; set %s=require to make this a failure", RequireEnv)
}

// Require returns the path of tool, or stops the test: a failure when tools
// are required, a skip naming the tool otherwise.
func Require(t testing.TB, tool string) string {
	t.Helper()
	p, err := exec.LookPath(tool)
	if err == nil {
		return p
	}
	var msg string
	if install, ok := goInstalled[tool]; ok {
		if p := filepath.Join(build.Default.GOPATH, "bin", tool); isExecutable(p) {
			return p
		}
		msg = tool + " is not installed (" + install + "; bash .ci/run --install-only installs it)"
	} else {
		pkg := packages[tool]
		if pkg == "" {
			pkg = tool
		}
		msg = tool + " is not installed (Debian package " + pkg + "; bash .ci/run --install-only installs it)"
	}
	if Required() {
		t.Fatalf("%s, and %s=require says the real tools must be present", msg, RequireEnv)
	}
	t.Skipf("%s; set %s=require to make this a failure", msg, RequireEnv)
	return ""
}

// isExecutable reports whether p is an executable file.
func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}
