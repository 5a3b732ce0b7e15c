locals {
  hello = "${env("NIX_STORE_DIR")}/fv3w4afhjjxq9558jq5kaj3jcj81a8rc-hello-2.12"
}

# Signed, zstd, every system in one cache folder.
export "signed" {
  format      = "binary-cache"
  paths       = [local.hello]
  systems     = ["x86_64-linux", "aarch64-linux"]
  output      = "caches/signed"
  compression = "zstd"
  sign_key    = "cache.secret"
}

# The defaults: output "plain", xz, unsigned.
export "plain" {
  format = "binary-cache"
  paths  = [local.hello]
}

# Published to an S3 bucket, as Nix names them.
export "bucket" {
  format      = "binary-cache"
  paths       = [local.hello]
  output      = "s3://nix-cache/ci?region=eu-west-1&endpoint=127.0.0.1:7070&scheme=http"
  compression = "zstd"
  sign_key    = "cache.secret"
}
