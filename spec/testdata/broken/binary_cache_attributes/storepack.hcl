locals {
  hello = "${env("NIX_STORE_DIR")}/fv3w4afhjjxq9558jq5kaj3jcj81a8rc-hello-2.12"
}

export "images-only" {
  format      = "binary-cache"
  paths       = [local.hello]
  tag         = "hello:1.0"
  compression = "gzip"

  system "x86_64-linux" {
    entrypoint = ["/bin/sh"]
  }
}

export "missing-key" {
  format   = "binary-cache"
  paths    = [local.hello]
  sign_key = "no-such.secret"
}

export "public-key" {
  format   = "binary-cache"
  paths    = [local.hello]
  sign_key = "cache.public"
}

export "garbled-key" {
  format   = "binary-cache"
  paths    = [local.hello]
  sign_key = "garbled.secret"
}

export "empty-key" {
  format   = "binary-cache"
  paths    = [local.hello]
  sign_key = ""
}

export "nar" {
  format   = "nar"
  paths    = [local.hello]
  sign_key = "cache.secret"
}
