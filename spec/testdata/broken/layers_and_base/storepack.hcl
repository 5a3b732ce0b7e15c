# Layer blocks and bases gone wrong.
export "tree" {
  format = "tarball"
  paths  = ["${env("NIX_STORE_DIR")}/fv3w4afhjjxq9558jq5kaj3jcj81a8rc-hello-2.12"]
  layer "base" {
    paths = ["${env("NIX_STORE_DIR")}/fv3w4afhjjxq9558jq5kaj3jcj81a8rc-hello-2.12"]
  }
}

export "image" {
  format     = "docker"
  paths      = ["${env("NIX_STORE_DIR")}/fv3w4afhjjxq9558jq5kaj3jcj81a8rc-hello-2.12"]
  max_layers = 2
  layer "a" {
    paths = ["${env("NIX_STORE_DIR")}/fv3w4afhjjxq9558jq5kaj3jcj81a8rc-hello-2.12"]
  }
  layer "b" {
    paths = ["${env("NIX_STORE_DIR")}/fv3w4afhjjxq9558jq5kaj3jcj81a8rc-hello-2.12"]
  }
  layer "a" {
    paths = []
  }
  layer "c" {
  }
}

export "bad-base" {
  format = "oci"
  paths  = ["${env("NIX_STORE_DIR")}/fv3w4afhjjxq9558jq5kaj3jcj81a8rc-hello-2.12"]
  base   = "Registry.Example/UPPER CASE"
}

export "tree-base" {
  format = "tarball"
  paths  = ["${env("NIX_STORE_DIR")}/fv3w4afhjjxq9558jq5kaj3jcj81a8rc-hello-2.12"]
  base   = "oci:x"
}
