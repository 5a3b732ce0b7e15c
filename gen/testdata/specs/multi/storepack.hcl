store {
  dir  = "/gnu/store"
  root = "../../root"
  db   = "none"
}

export "multi" {
  format  = "nar"
  systems = ["x86_64-linux", "aarch64-linux"]
  paths   = ["/gnu/store/qvzbpnllxraamdsh8qmz8rsp7xrsnj9q-hello-2.12"]

  system "aarch64-linux" {
    paths = ["/gnu/store/bccn8y94f8gq8v2vx3j2rlvg1chb1xhq-greeting"]
  }
}

export "tz" {
  format = "nar"
  paths  = ["/gnu/store/9zbcl14iyclshi05nwjk9z9cbvllybap-tzdata"]
  systems = ["x86_64-linux"]
}
