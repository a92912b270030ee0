# expect: source.amazon-ebs.x: argument 'ami_regions' is list(string), got string
variable "regions" {
  type = string
}
source "amazon-ebs" "x" {
  ami_regions = var.regions
}
