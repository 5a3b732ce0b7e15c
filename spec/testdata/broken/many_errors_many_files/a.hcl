export "one" {
  format = "zip"
  paths  = [local.hello]
}
