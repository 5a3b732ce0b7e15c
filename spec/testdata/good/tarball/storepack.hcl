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
