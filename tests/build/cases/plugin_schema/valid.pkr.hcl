# expect: nothing
variable "regions" {
  type = list(string)
}
source "amazon-ebs" "x" {
  region       = "us-east-1"
  ami_regions  = var.regions
  encrypt_boot = true
  tags = {
    Name = "x"
  }
  launch_block_device_mappings {
    device_name = "/dev/xvda"
    volume_size = 20
    encrypted   = true
    kms_key_id  = "alias/x"
  }
}
build {
  sources = ["source.amazon-ebs.x"]
  post-processor "manifest" {
    output              = "m.json"
    keep_input_artifact = true
    custom_data = {
      a = "b"
    }
  }
}
