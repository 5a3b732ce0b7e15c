export "b-bundle" {
  format = "nar"
  paths  = local.roots
  output = "bundles/${local.stem}.nar"
}

export "a-bundle" {
  format  = "nar"
  paths   = [local.roots[0]]
  systems = var.systems
}
