# A Docker image of the program: `podman load -i out/app-docker.tar`, then
# `podman run --rm storepack-example/app:1.0.0` prints its greeting. The
# program is static, so the image needs nothing but its own store item.
export "app-docker" {
  format     = "docker"
  paths      = [source.app.store_path]
  systems    = ["x86_64-linux"]
  tag        = "storepack-example/app:${var.version}"
  entrypoint = [source.app.store_path]
  cmd        = ["docker"]
  env        = { LANG = "C.UTF-8" }
  labels = {
    "org.opencontainers.image.title"   = "app"
    "org.opencontainers.image.version" = var.version
  }
}
