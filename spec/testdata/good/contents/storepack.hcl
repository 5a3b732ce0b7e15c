# Accounts and files: /etc/passwd and /etc/group, homes, extra files.
export "image" {
  format = "docker"
  paths  = ["${env("NIX_STORE_DIR")}/fv3w4afhjjxq9558jq5kaj3jcj81a8rc-hello-2.12"]
  user   = "app"

  account "app" {
    uid = 1000
  }
  account "worker" {
    uid  = 1001
    gid  = 100
    home = "/var/lib/worker"
  }
  file "/etc/motd" {
    source = "motd"
  }
  file "/opt/app/config.json" {
    content = jsonencode({ debug = false })
    mode    = "0600"
    uid     = 1000
    gid     = 1000
  }
}

export "tree" {
  format = "tarball"
  paths  = ["${env("NIX_STORE_DIR")}/fv3w4afhjjxq9558jq5kaj3jcj81a8rc-hello-2.12"]

  file "/etc/hello.conf" {
    content = "greeting = hi\n"
  }
}
