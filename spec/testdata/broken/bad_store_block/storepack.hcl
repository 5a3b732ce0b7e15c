store {
  dir = ""
  db  = ""
  url = "https://cache.example.org"
}

source "app" {
  path = "storepack.hcl"
}

export "hello" {
  format = "nar"
  paths  = [source.app.store_path]
}
