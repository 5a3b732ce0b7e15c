variable "version" {
  type        = string
  default     = "dev"
  description = "release version"
}

locals {
  store = env("NIX_STORE_DIR")
  hello = "${local.store}/fv3w4afhjjxq9558jq5kaj3jcj81a8rc-hello-2.12"
  bash  = "${local.store}/9rg54gh2ym9b5skznxfm0lqcj2ywmv47-bash-5.1"
}

export "hello" {
  format  = "docker"
  paths   = [local.hello]
  systems = ["x86_64-linux"]
  output  = "images/hello-${var.version}.tar"

  tag           = "registry.example.org:5000/demo/hello:${var.version}"
  entrypoint    = ["${local.hello}/bin/hello"]
  cmd           = ["--greeting", "hi"]
  env           = { LANG = "C.UTF-8", TZ = "UTC" }
  working_dir   = "/"
  user          = "0:0"
  labels        = { "org.opencontainers.image.source" = "https://example.org/hello" }
  exposed_ports = ["8080/tcp", "53/udp", "9000"]
  volumes       = ["/data"]
  symlinks      = { "/bin" = "${local.hello}/bin", "/usr/bin/env" = "${local.bash}/bin/bash" }
  max_layers    = 20
  compression   = "gzip"
  created       = "2024-01-02T03:04:05Z"
  push          = "localhost:5000/hello:${var.version}"
  insecure      = true

  system "aarch64-linux" {
    paths      = [local.bash]
    entrypoint = ["${local.bash}/bin/bash"]
    cmd        = []
  }
}

export "minimal-oci" {
  format   = "oci"
  paths    = [local.bash]
  symlinks = {}
}
