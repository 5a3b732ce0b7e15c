store {
  dir  = "/gnu/store"
  root = "../../root"
  db   = "none"
}

# An image run as an account, with files of its own: /etc/passwd and
# /etc/group in the top layer with the home folder (owned by the account)
# and the files (their modes and owners, folders made above them).
export "hello" {
  format  = "oci"
  systems = ["x86_64-linux"]
  paths   = ["/gnu/store/qvzbpnllxraamdsh8qmz8rsp7xrsnj9q-hello-2.12"]
  user    = "app"
  created = "2024-01-02T03:04:05Z"

  account "app" {
    uid  = 1000
    gid  = 100
    home = "/srv/app"
  }
  file "/etc/hello/greeting.conf" {
    content = "greeting = hi\n"
    mode    = "0640"
    uid     = 1000
    gid     = 100
  }
}

# The same in a tarball.
export "tz" {
  format  = "tarball"
  paths   = ["/gnu/store/9zbcl14iyclshi05nwjk9z9cbvllybap-tzdata"]
  systems = ["x86_64-linux"]

  account "tz" {
    uid = 500
  }
  file "/etc/timezone" {
    content = "Etc/UTC\n"
  }
}
