store {
  dir  = "/gnu/store"
  root = "../../root"
  db   = "none"
}

# A tarball per system with the store database; the default /bin symlink.
export "hello" {
  format   = "tarball"
  systems  = ["x86_64-linux", "aarch64-linux"]
  paths    = ["/gnu/store/qvzbpnllxraamdsh8qmz8rsp7xrsnj9q-hello-2.12"]
  database = true
  created  = "2024-01-02T03:04:05Z"

  system "aarch64-linux" {
    paths = ["/gnu/store/bccn8y94f8gq8v2vx3j2rlvg1chb1xhq-greeting"]
  }
}

# A plain tar with a symlink of its own and none at /bin.
export "tz" {
  format      = "tarball"
  paths       = ["/gnu/store/9zbcl14iyclshi05nwjk9z9cbvllybap-tzdata"]
  systems     = ["x86_64-linux"]
  compression = "none"
  symlinks    = { "/usr/share/zoneinfo" = "/gnu/store/9zbcl14iyclshi05nwjk9z9cbvllybap-tzdata/share/zoneinfo" }
}

# A deb per system: no default /bin symlink; architectures as Debian names
# them.
export "pkg" {
  format  = "deb"
  paths   = ["/gnu/store/qvzbpnllxraamdsh8qmz8rsp7xrsnj9q-hello-2.12"]
  systems = ["x86_64-linux", "armhf-linux"]

  package {
    name       = "hello"
    version    = "2.12"
    maintainer = "Release Team <release@example.org>"
    # Maintainer scripts: a file (its #! line its own), and a string
    # given #!/bin/sh.
    postinst = file("postinst")
    prerm    = "rm -f /var/lib/hello/greeted\n"
  }
}

# An rpm per system: architectures as RPM names them, zstd payload.
export "rpm" {
  format  = "rpm"
  paths   = ["/gnu/store/qvzbpnllxraamdsh8qmz8rsp7xrsnj9q-hello-2.12"]
  systems = ["x86_64-linux", "armhf-linux"]

  package {
    name        = "hello"
    version     = "2.12"
    release     = "2"
    license     = "GPL-3.0-or-later"
    description = "GNU Hello\nPacked from its store closure."
    # Scriptlets: %pre runs with the #! line's interpreter and argument.
    preinst = "#!/bin/bash -e\necho installing hello\n"
    postrm  = file("postinst")
  }
}

# A squashfs image for Apptainer: the runscript execs the entry point and
# cmd; the environment; the mount points.
export "sif" {
  format     = "squashfs"
  paths      = ["/gnu/store/qvzbpnllxraamdsh8qmz8rsp7xrsnj9q-hello-2.12"]
  systems    = ["x86_64-linux"]
  entrypoint = ["/gnu/store/qvzbpnllxraamdsh8qmz8rsp7xrsnj9q-hello-2.12/bin/hello"]
  cmd        = ["--greeting", "it's me"]
  env        = { LANG = "C.UTF-8" }
}
