# Two programs in one profile, as a relocatable tarball (guix pack -R):
# any user unpacks it anywhere and runs them, with no root and no
# /gnu/store on the machine: `mkdir ~/t && tar -xf
# out/app-relocatable.tar.gz -C ~/t && ~/t/bin/greet && ~/t/bin/sums 1 2`
# (see docs/relocatable.md and docs/profiles.md).
source "greet" {
  path = "tools/greet"
  name = "greet-${var.version}"
}

source "sums" {
  path = "tools/sums"
  name = "sums-${var.version}"
}

export "app-relocatable" {
  format      = "tarball"
  paths       = [source.greet.store_path, source.sums.store_path]
  systems     = ["x86_64-linux"]
  profile     = true
  relocatable = true
}
