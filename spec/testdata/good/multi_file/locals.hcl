# Locals refer to each other and to locals of other blocks and files in any order.
locals {
  roots = [for n in local.names : "${local.store}/${n}"]
  stem  = join("-", [for n in local.names : split("-", n)[1]])
}

locals {
  names = sort(["fv3w4afhjjxq9558jq5kaj3jcj81a8rc-hello-2.12", "9rg54gh2ym9b5skznxfm0lqcj2ywmv47-bash-5.1"])
  store = env("NIX_STORE_DIR")
}
