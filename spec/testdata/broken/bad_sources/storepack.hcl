source "missing" {
  path = "no/such/folder"
}

source "bad_name" {
  path = "."
  name = "has space"
}

source "no_path" {
  name = "x"
}

source "default_name" {
  path = ".hidden"
}

source "missing" {
  path = "again"
}

export "hello" {
  format = "nar"
  paths  = [source.missing.store_path]
}
