# expect: source.amazon-ebs.x: unknown block 'metadata_option'
source "amazon-ebs" "x" {
  metadata_option {
    http_tokens = "required"
  }
}
