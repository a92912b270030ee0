# expect: unknown_argument.pkr.hcl: source.amazon-ebs.x: unknown argument 'kms_keyid'
source "amazon-ebs" "x" {
  region    = "us-east-1"
  kms_keyid = "alias/typo"
}
