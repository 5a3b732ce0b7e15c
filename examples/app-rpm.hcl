# An RPM package of the program: `rpm -i out/app-1.0.0-1.x86_64.rpm`
# installs it at its store path (and /usr/bin/app). The file is named as
# rpmbuild names packages, NAME-VERSION-RELEASE.ARCH.rpm, since no output
# is given.
export "app-rpm" {
  format   = "rpm"
  paths    = [source.app.store_path]
  systems  = ["x86_64-linux"]
  symlinks = { "/usr/bin/app" = source.app.store_path }

  package {
    name       = "app"
    version    = var.version
    maintainer = "Example Maintainers <maintainers@example.org>"
    license    = "MIT"
    homepage   = "https://example.org/app"
  }
}
