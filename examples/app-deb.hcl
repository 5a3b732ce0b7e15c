# A Debian package of the program: `dpkg -i out/app-deb.deb` installs it
# at its store path (and /usr/bin/app); `dpkg -r app` removes it again.
export "app-deb" {
  format   = "deb"
  paths    = [source.app.store_path]
  systems  = ["x86_64-linux"]
  symlinks = { "/usr/bin/app" = source.app.store_path }

  package {
    name        = "app"
    version     = var.version
    maintainer  = "Example Maintainers <maintainers@example.org>"
    description = "greeting program\nThe example program of storepack, packed from its store closure."
    homepage    = "https://example.org/app"
  }
}
