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
