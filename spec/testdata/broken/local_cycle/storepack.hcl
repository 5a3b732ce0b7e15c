locals {
  a = local.b
  b = "${local.c}-b"
  c = upper(local.a)
  d = local.d
  e = "fine"
}

export "hello" {
  format = "nar"
  paths  = ["${env("NIX_STORE_DIR")}/fv3w4afhjjxq9558jq5kaj3jcj81a8rc-hello-2.12"]
  output = "${local.a}.nar"
}
