store {
  dir  = "/gnu/store"
  root = "../../root"
  db   = "none"
}

source "app" {
  path = "app"
  name = "app-1.0"
}

export "app" {
  format  = "nar"
  paths   = [source.app.store_path]
  systems = ["x86_64-linux"]
  output  = "app.bundle"
}
