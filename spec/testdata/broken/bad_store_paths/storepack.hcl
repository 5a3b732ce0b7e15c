locals {
  store = env("NIX_STORE_DIR")
}

export "hello" {
  format = "nar"
  paths = [
    "/usr/bin/hello",
    "${local.store}/not-a-hash-hello",
    "${local.store}/rdb2yvc2ji2yb2lyq5zn3ahzqcb50sfp-broken",
    "${local.store}/fv3w4afhjjxq9558jq5kaj3jcj81a8rc-hello-2.12/bin/hello",
    "${local.store}/fv3w4afhjjxq9558jq5kaj3jcj81a8rc-hello-2.12",
  ]
}
