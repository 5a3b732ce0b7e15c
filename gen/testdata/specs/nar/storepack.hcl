store {
  dir  = "/gnu/store"
  root = "../../root"
  db   = "none"
}

export "hello" {
  format  = "nar"
  paths   = ["/gnu/store/qvzbpnllxraamdsh8qmz8rsp7xrsnj9q-hello-2.12"]
  systems = ["x86_64-linux"]
}
