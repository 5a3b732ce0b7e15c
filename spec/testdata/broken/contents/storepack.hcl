# Account and file blocks gone wrong.
export "nar" {
  format = "nar"
  paths  = ["${env("NIX_STORE_DIR")}/fv3w4afhjjxq9558jq5kaj3jcj81a8rc-hello-2.12"]
  account "app" {
    uid = 1000
  }
  file "/etc/motd" {
    content = "hi"
  }
}

export "image" {
  format = "docker"
  paths  = ["${env("NIX_STORE_DIR")}/fv3w4afhjjxq9558jq5kaj3jcj81a8rc-hello-2.12"]
  user   = "nobody-here"

  account "root" {
    uid = 0
  }
  account "Bad Name" {
    uid = 5
  }
  account "app" {
    uid = -1
  }
  file "etc/relative" {
    content = "x"
  }
  file "/etc/missing" {
    source = "missing.txt"
  }
  file "/etc/special" {
    source = "/dev/null"
  }
  file "/etc/both" {
    content = "x"
    source  = "missing.txt"
  }
  file "/etc/neither" {
  }
  file "/etc/mode" {
    content = "x"
    mode    = "644"
  }
  file "/etc/huge" {
    content = format("%16777217s", "")
  }
}
