store {
  dir  = "/gnu/store"
  root = "../../root"
  db   = "none"
}

variable "version" {
  type    = string
  default = "2.12"
}

# An image with SBOMs, provenance, a signature and annotations: the plan
# shows them (sbom, provenance, sign_key; annotations on each image, with
# created and version filled in), and the spec files and variables the
# provenance records.
export "hello" {
  format      = "oci"
  systems     = ["x86_64-linux", "aarch64-linux"]
  paths       = ["/gnu/store/qvzbpnllxraamdsh8qmz8rsp7xrsnj9q-hello-2.12"]
  tag         = "hello:${var.version}"
  created     = "2024-01-02T03:04:05Z"
  sbom        = ["spdx", "cyclonedx"]
  provenance  = true
  sign_key    = "release.key"
  annotations = { "org.opencontainers.image.source" = "https://example.org/hello" }
}

# A tarball with an SBOM alone.
export "tz" {
  format  = "tarball"
  paths   = ["/gnu/store/9zbcl14iyclshi05nwjk9z9cbvllybap-tzdata"]
  systems = ["x86_64-linux"]
  sbom    = ["cyclonedx"]
}
