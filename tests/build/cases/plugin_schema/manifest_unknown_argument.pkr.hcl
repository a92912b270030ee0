# expect: build.post-processor.manifest: unknown argument 'outpt'
build {
  sources = ["source.amazon-ebs.x"]
  post-processor "manifest" {
    outpt      = "manifest.json"
    strip_path = true
  }
}
