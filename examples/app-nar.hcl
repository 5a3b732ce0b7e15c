# The export bundle of the program's closure, as `guix archive --export -r`
# writes it: `nix-store --import` or `guix archive --import` reads it.
export "app-nar" {
  format  = "nar"
  paths   = [source.app.store_path]
  systems = ["x86_64-linux"]
  output  = "app.nar"
}
