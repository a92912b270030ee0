# expect: source.amazon-ebs.x.launch_block_device_mappings: unknown argument 'size'
source "amazon-ebs" "x" {
  launch_block_device_mappings {
    device_name = "/dev/xvdb"
    size        = 64
  }
}
