export "hello" {
  format = "nar"
}

export "per-system" {
  format  = "nar"
  systems = ["x86_64-linux"]

  system "aarch64-linux" {
    paths = ["${env("NIX_STORE_DIR")}/fv3w4afhjjxq9558jq5kaj3jcj81a8rc-hello-2.12"]
  }
}
