locals {
  hello = "${env("NIX_STORE_DIR")}/fv3w4afhjjxq9558jq5kaj3jcj81a8rc-hello-2.12"
}

export "hello" {
  format        = "docker"
  paths         = [local.hello]
  tag           = "Hello:1.0"
  entrypoint    = ["${local.hello}/bin/goodbye"]
  compression   = "xz"
  created       = "yesterday"
  exposed_ports = ["8080/tcp", "http", "70000", "53/icmp"]
  volumes       = ["data"]
  working_dir   = "srv"
  env           = { "A=B" = "c" }
  symlinks      = { "bin" = "${local.hello}/bin", "/lib" = "${env("NIX_STORE_DIR")}/rdb2yvc2ji2yb2lyq5zn3ahzqcb50sfp-broken/lib" }
  push          = "https://registry.example.org/hello"
}

export "Upper" {
  format = "oci"
  paths  = [local.hello]
}

export "tags" {
  format = "oci"
  paths  = [local.hello]
  tag    = "hello:-bad"
}
