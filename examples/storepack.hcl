# The bundled examples: a small static Go program (examples/app), built
# reproducibly by `go run mage.go examples`, added to the store as a
# content-addressed item and packed several ways. No Nix is needed: the
# closure is the program alone.

variable "version" {
  type        = string
  default     = "1.0.0"
  description = "the version the images are tagged with"
}

locals {
  arches = ["amd64", "arm64"]
}

store {
  dir = "/gnu/store"
  db  = "none"
}

source "app" {
  path = "build/amd64/app"
  name = "app-${var.version}"
}

# The same program built for arm64, for the multi-arch OCI image.
source "app_arm64" {
  path = "build/arm64/app"
  name = "app-${var.version}"
}
