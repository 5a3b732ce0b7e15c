locals {
  hello = "${env("NIX_STORE_DIR")}/fv3w4afhjjxq9558jq5kaj3jcj81a8rc-hello-2.12"
}

export "hello" {
  format   = "tarball"
  paths    = [local.hello]
  systems  = ["x86_64-linux", "aarch64-linux"]
  database = true
  created  = "2024-01-02T03:04:05Z"
  symlinks = { "/usr/bin/hello" = "${local.hello}/bin/hello" }
}

export "small" {
  format      = "tarball"
  paths       = [local.hello]
  compression = "zstd"
}

export "pkg" {
  format  = "deb"
  paths   = [local.hello]
  systems = ["x86_64-linux", "armhf-linux"]

  package {
    name        = "hello-closure"
    version     = "2.12+1"
    maintainer  = "Release Team <release@example.org>"
    description = "GNU Hello\nPacked from its store closure."
    license     = "GPL-3.0-or-later"
    homepage    = "https://example.org/hello"
    postinst    = <<-EOT
      set -e
      echo "configured $1"
    EOT
    postrm      = "#!/bin/bash\necho removed\n"
  }
}

export "rpm" {
  format      = "rpm"
  paths       = [local.hello]
  compression = "xz"

  package {
    version = "2.12"
    release = "4.el9"
    license = "GPL-3.0-or-later"
  }
}

export "sif" {
  format      = "squashfs"
  paths       = [local.hello]
  compression = "zstd"
  entrypoint  = ["${local.hello}/bin/hello"]
  env         = { LANG = "C.UTF-8" }
  database    = true
}
