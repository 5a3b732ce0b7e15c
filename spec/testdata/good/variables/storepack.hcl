# Values come from --var (highest), then STOREPACK_VAR_<name>, then the default.
variable "from_default" {
  type    = string
  default = "default"
}

variable "from_env" {
  type    = string
  default = "default"
}

variable "from_flag" {
  type    = string
  default = "default"
}

variable "layers" {
  type    = number
  default = 10
}

variable "compress" {
  type    = bool
  default = false
}

variable "ports" {
  type    = list(number)
  default = []
}

variable "labels" {
  type    = map(string)
  default = {}
}

variable "untyped" {
  default = 1
}

variable "anything" {
  type = any
}

export "vars" {
  format        = "oci"
  paths         = ["${env("NIX_STORE_DIR")}/fv3w4afhjjxq9558jq5kaj3jcj81a8rc-hello-2.12"]
  tag           = lower("${var.from_default}-${var.from_env}-${var.from_flag}")
  max_layers    = var.layers + 1
  compression   = var.compress ? "zstd" : "none"
  exposed_ports = [for p in var.ports : "${p}/tcp"]
  labels = merge(var.labels, {
    untyped  = jsonencode(var.untyped)
    anything = jsonencode(var.anything)
  })
}
