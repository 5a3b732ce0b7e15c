# A multi-arch OCI image layout (out/app-oci/): one manifest per system
# under one image index, gzip-compressed layers, with SBOMs and provenance
# beside it (out/app-oci.spdx.json, .cdx.json, .intoto.json) and attached
# to the index as OCI 1.1 referrers. `skopeo inspect --raw
# oci:out/app-oci:storepack-example/app:1.0.0` shows the index; `podman
# run` picks the host's image from it.
export "app-oci" {
  format      = "oci"
  systems     = ["x86_64-linux", "aarch64-linux"]
  paths       = [source.app.store_path]
  entrypoint  = [source.app.store_path]
  cmd         = ["oci"]
  tag         = "storepack-example/app:${var.version}"
  compression = "gzip"
  sbom        = ["spdx", "cyclonedx"]
  provenance  = true

  system "aarch64-linux" {
    paths      = [source.app_arm64.store_path]
    entrypoint = [source.app_arm64.store_path]
  }
}
