locals {
  hello = "${env("NIX_STORE_DIR")}/fv3w4afhjjxq9558jq5kaj3jcj81a8rc-hello-2.12"
}

export "absolute" {
  format = "nar"
  paths  = [local.hello]
  output = "/tmp/hello.nar"
}

export "up" {
  format = "nar"
  paths  = [local.hello]
  output = "../hello.nar"
}

export "empty" {
  format = "nar"
  paths  = [local.hello]
  output = ""
}

export "s3_on_nar" {
  format = "nar"
  paths  = [local.hello]
  output = "s3://bucket/hello.nar"
}

export "s3_bad_parameter" {
  format = "binary-cache"
  paths  = [local.hello]
  output = "s3://bucket/cache?region=eu-west-1&compression=xz"
}

export "s3_with_sbom" {
  format = "binary-cache"
  paths  = [local.hello]
  output = "s3://bucket/cache?region=eu-west-1&endpoint=127.0.0.1:7070&scheme=http"
  sbom   = ["spdx"]
}
