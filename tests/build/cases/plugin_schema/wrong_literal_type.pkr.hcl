# expect: source.amazon-ebs.x: argument 'encrypt_boot' is bool, got string
source "amazon-ebs" "x" {
  encrypt_boot = "yes"
}
