export "hello" {
  format     = "nar"
  paths      = ["${env("NIX_STORE_DIR")}/fv3w4afhjjxq9558jq5kaj3jcj81a8rc-hello-2.12"]
  tag        = "hello:1.0"
  max_layers = 10
  entrypoint = ["/bin/sh"]

  system "x86_64-linux" {
    cmd = ["-c", "true"]
  }
}
