# A multi-arch OCI image layout (out/app-oci/): one manifest per system
# under one image index, gzip-compressed layers. `skopeo inspect --raw
# oci:out/app-oci` shows the index; `podman run` picks the host's image
# from `oci:out/app-oci`.
export "app-oci" {
  format      = "oci"
  systems     = ["x86_64-linux", "aarch64-linux"]
  paths       = [source.app.store_path]
  entrypoint  = [source.app.store_path]
  cmd         = ["oci"]
  tag         = "storepack-example/app:${var.version}"
  compression = "gzip"

  system "aarch64-linux" {
    paths      = [source.app_arm64.store_path]
    entrypoint = [source.app_arm64.store_path]
  }
}
