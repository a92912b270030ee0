# expect: source.amazon-ebsx.x: no schema for source type 'amazon-ebsx'
source "amazon-ebsx" "x" {
  region = "us-east-1"
}
