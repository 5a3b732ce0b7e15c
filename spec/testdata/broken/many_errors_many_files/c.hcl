export "three" {
  format  = "oci"
  paths   = [local.hello]
  systems = ["windows"]
  colour  = "blue"
}
