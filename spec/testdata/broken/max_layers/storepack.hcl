locals {
  hello = "${env("NIX_STORE_DIR")}/fv3w4afhjjxq9558jq5kaj3jcj81a8rc-hello-2.12"
}

export "zero" {
  format     = "docker"
  paths      = [local.hello]
  max_layers = 0
}

export "many" {
  format     = "docker"
  paths      = [local.hello]
  max_layers = 128
}

export "half" {
  format     = "oci"
  paths      = [local.hello]
  max_layers = 2.5
}
