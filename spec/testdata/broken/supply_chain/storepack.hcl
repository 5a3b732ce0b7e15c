# Supply chain attributes gone wrong: an unknown SBOM format, a format
# listed twice, keys of unsupported types, a cosign key with the wrong
# password, a missing key file, annotations on a tree.
export "unknown-sbom" {
  format = "nar"
  paths  = ["${env("NIX_STORE_DIR")}/fv3w4afhjjxq9558jq5kaj3jcj81a8rc-hello-2.12"]
  sbom   = ["spdx", "syft"]
}

export "twice" {
  format = "nar"
  paths  = ["${env("NIX_STORE_DIR")}/fv3w4afhjjxq9558jq5kaj3jcj81a8rc-hello-2.12"]
  sbom   = ["cyclonedx", "cyclonedx"]
}

export "rsa" {
  format   = "tarball"
  paths    = ["${env("NIX_STORE_DIR")}/fv3w4afhjjxq9558jq5kaj3jcj81a8rc-hello-2.12"]
  sign_key = "rsa.key"
}

export "p384" {
  format   = "tarball"
  paths    = ["${env("NIX_STORE_DIR")}/fv3w4afhjjxq9558jq5kaj3jcj81a8rc-hello-2.12"]
  sign_key = "p384.key"
}

export "wrong-password" {
  format   = "docker"
  paths    = ["${env("NIX_STORE_DIR")}/fv3w4afhjjxq9558jq5kaj3jcj81a8rc-hello-2.12"]
  sign_key = "cosign.key"
}

export "no-key" {
  format   = "oci"
  paths    = ["${env("NIX_STORE_DIR")}/fv3w4afhjjxq9558jq5kaj3jcj81a8rc-hello-2.12"]
  sign_key = "missing.key"
}

export "tree-annotations" {
  format      = "tarball"
  paths       = ["${env("NIX_STORE_DIR")}/fv3w4afhjjxq9558jq5kaj3jcj81a8rc-hello-2.12"]
  annotations = { "a" = "b" }
  provenance  = "yes"
}
