variable "v" {
  default = "1"
}

variable "v" {
  default = "2"
}

locals {
  hello = "${env("NIX_STORE_DIR")}/fv3w4afhjjxq9558jq5kaj3jcj81a8rc-hello-2.12"
}

locals {
  hello = "again"
}

store {}
store {}

export "hello" {
  format = "nar"
  paths  = [local.hello]
}

export "hello" {
  format = "docker"
  paths  = [local.hello]
}

export "other" {
  format = "nar"
  paths  = [local.hello]
  output = "hello.nar"
}

export "layout" {
  format = "oci"
  paths  = [local.hello]
  output = "images"
}

export "inside" {
  format = "docker"
  paths  = [local.hello]
  output = "images/inside.tar"
}
