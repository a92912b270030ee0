# expect: source.amazon-ebs.x: unknown argument 'metadata_options' (it is a block: write it without '=')
source "amazon-ebs" "x" {
  metadata_options = {
    http_tokens = "required"
  }
}
