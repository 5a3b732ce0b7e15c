store {
  dir  = "/gnu/store"
  root = "../../root"
  db   = "none"
}

locals {
  hello    = "/gnu/store/qvzbpnllxraamdsh8qmz8rsp7xrsnj9q-hello-2.12"
  greeting = "/gnu/store/bccn8y94f8gq8v2vx3j2rlvg1chb1xhq-greeting"
  tzdata   = "/gnu/store/9zbcl14iyclshi05nwjk9z9cbvllybap-tzdata"
}

# An image of a profile: the entry point and a symlink relative to it,
# its search paths in Env (LANG from the spec beside them, and PATH the
# spec's), share/zoneinfo merged from greeting's link and tzdata's folder.
export "image" {
  format     = "docker"
  paths      = [local.hello, local.greeting, local.tzdata]
  systems    = ["x86_64-linux"]
  profile    = true
  entrypoint = ["bin/hello"]
  env        = { LANG = "C.UTF-8" }
  symlinks   = { "/opt/gnu/bin" = "bin" }
  created    = "2024-01-02T03:04:05Z"
}

# A tarball with a store database: /bin and the Guix default profile link
# to the profile.
export "tarball" {
  format   = "tarball"
  paths    = [local.hello, local.greeting]
  systems  = ["x86_64-linux"]
  database = true
  created  = "2024-01-02T03:04:05Z"
  profile {
    allow_collisions = false
  }
}
