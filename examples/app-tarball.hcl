# The program's closure as a tarball, as `guix pack` writes one: extract it
# as root into an empty folder (`tar -xf out/app-tarball.tar.gz -C root`),
# then `chroot root /bin/app` runs it. The store database inside lets a
# Guix or Nix in the tree know the item is valid.
export "app-tarball" {
  format   = "tarball"
  paths    = [source.app.store_path]
  systems  = ["x86_64-linux"]
  symlinks = { "/bin/app" = source.app.store_path }
  database = true
}
