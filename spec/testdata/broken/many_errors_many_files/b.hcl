locals {
  hello = "${env("NIX_STORE_DIR")}/fv3w4afhjjxq9558jq5kaj3jcj81a8rc-hello-2.12"
}

export "two" {
  format     = "docker"
  paths      = [local.hello]
  max_layers = 500
  tag        = "UPPER"
}
