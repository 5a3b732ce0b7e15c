store {
  dir  = "/gnu/store"
  root = "../../root"
  db   = "none"
}

# An image on a base (gen/testdata/base-layout, an OCI layout that
# storepack wrote of tzdata for x86_64 and aarch64, tag base:1, with an
# env and a cmd), for two systems: each gets its platform's base manifest;
# the base's layers come first and count against max_layers; the config
# inherits cmd and merges env by name.
export "hello" {
  format     = "oci"
  systems    = ["x86_64-linux", "aarch64-linux"]
  paths      = ["/gnu/store/qvzbpnllxraamdsh8qmz8rsp7xrsnj9q-hello-2.12"]
  base       = "oci:../../base-layout:base:1"
  env        = { LANG = "C.UTF-8" }
  max_layers = 4
  created    = "2024-01-02T03:04:05Z"
}
