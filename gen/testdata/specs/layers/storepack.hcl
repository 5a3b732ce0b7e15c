store {
  dir  = "/gnu/store"
  root = "../../root"
  db   = "none"
}

# Layer blocks: "base" holds greeting and, from its closure, tzdata; "libc"
# holds glibc (tzdata is placed already); hello, left over, is the root
# layer; max_layers = 4 counts them all with the layer of folders
# and symlinks.
export "hello" {
  format     = "docker"
  systems    = ["x86_64-linux"]
  paths      = ["/gnu/store/qvzbpnllxraamdsh8qmz8rsp7xrsnj9q-hello-2.12"]
  max_layers = 4
  created    = "2024-01-02T03:04:05Z"

  layer "base" {
    paths = ["/gnu/store/bccn8y94f8gq8v2vx3j2rlvg1chb1xhq-greeting"]
  }
  layer "libc" {
    paths = ["/gnu/store/7x3fb49z5m5zc3qp8gj7dskrpcrgc9mi-glibc-2.39", "/gnu/store/9zbcl14iyclshi05nwjk9z9cbvllybap-tzdata"]
  }
}

# One layer block holding the whole closure: no item is left for the
# split, so max_layers = 3 leaves a layer unused.
export "all-named" {
  format     = "oci"
  systems    = ["x86_64-linux"]
  paths      = ["/gnu/store/qvzbpnllxraamdsh8qmz8rsp7xrsnj9q-hello-2.12"]
  max_layers = 3
  created    = "2024-01-02T03:04:05Z"

  layer "everything" {
    paths = ["/gnu/store/qvzbpnllxraamdsh8qmz8rsp7xrsnj9q-hello-2.12"]
  }
}
