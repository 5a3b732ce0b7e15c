variable "systems" {
  type    = list(string)
  default = ["x86_64-linux", "aarch64-linux"]
}
