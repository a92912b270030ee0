# expect: source.amazon-ebs.x: block 'metadata_options' may appear once, found 2
source "amazon-ebs" "x" {
  metadata_options {
    http_tokens = "required"
  }
  metadata_options {
    http_endpoint = "enabled"
  }
}
