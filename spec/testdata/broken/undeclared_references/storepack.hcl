export "hello" {
  format = "nar"
  paths  = [var.nope, local.nope, source.nope.store_path, nope.x]
  output = "${undefined_function("x")}.nar"
}
