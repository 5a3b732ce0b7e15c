variable "layers" {
  type = number
}

variable "ports" {
  type = list(number)
}

variable "broken_default" {
  type    = number
  default = "ten"
}

variable "bad_type" {
  type    = strin
  default = "x"
}

export "hello" {
  format     = "docker"
  paths      = ["${env("NIX_STORE_DIR")}/fv3w4afhjjxq9558jq5kaj3jcj81a8rc-hello-2.12"]
  max_layers = var.layers
}
