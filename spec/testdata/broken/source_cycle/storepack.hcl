source "app" {
  path = "."
  name = local.name
}

locals {
  name = "app-${substr(source.app.nar_hash, 7, 8)}"
}

export "app" {
  format = "nar"
  paths  = [source.app.store_path]
}
