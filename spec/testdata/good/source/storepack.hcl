# The store folder does not exist: the source's store path depends only on
# its contents, its name and this folder.
store {
  dir = "/storepack-test/store"
  db  = "none"
}

variable "version" {
  default = "1.0"
}

source "app" {
  path = "app"
  name = "app-${var.version}"
}

source "conf" {
  path = "app/app.conf"
}

locals {
  app = source.app.store_path
}

export "app" {
  format     = "docker"
  paths      = [local.app, source.conf.store_path]
  entrypoint = ["${local.app}/bin/app"]
  labels = {
    path     = source.app.path
    name     = source.app.name
    nar_hash = source.app.nar_hash
    conf     = source.conf.name
  }
}
