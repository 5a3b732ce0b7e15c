export "hello" {
  format  = "nar"
  paths   = ["${env("NIX_STORE_DIR")}/fv3w4afhjjxq9558jq5kaj3jcj81a8rc-hello-2.12"]
  systems = ["x86_64-linux", "x86_64-darwin", "x86_64-linux"]

  system "amd64" {
    paths = ["${env("NIX_STORE_DIR")}/fv3w4afhjjxq9558jq5kaj3jcj81a8rc-hello-2.12"]
  }

  system "aarch64-linux" {}
  system "aarch64-linux" {}
}
