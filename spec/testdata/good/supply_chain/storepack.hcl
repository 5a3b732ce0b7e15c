# SBOMs, provenance, signatures and annotations.
export "image" {
  format      = "oci"
  paths       = ["${env("NIX_STORE_DIR")}/fv3w4afhjjxq9558jq5kaj3jcj81a8rc-hello-2.12"]
  tag         = "hello:2.12"
  sbom        = ["cyclonedx", "spdx"]
  provenance  = true
  sign_key    = "release.key"
  annotations = { "org.opencontainers.image.source" = "https://example.org/hello" }
}

export "bundle" {
  format     = "nar"
  paths      = ["${env("NIX_STORE_DIR")}/fv3w4afhjjxq9558jq5kaj3jcj81a8rc-hello-2.12"]
  sbom       = ["spdx"]
  provenance = false
}
