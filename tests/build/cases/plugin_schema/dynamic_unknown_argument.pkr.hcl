# expect: source.amazon-ebs.x.temporary_iam_instance_profile_policy_document.Statement: unknown argument 'Actions'
source "amazon-ebs" "x" {
  dynamic "temporary_iam_instance_profile_policy_document" {
    for_each = [1]
    content {
      Version = "2012-10-17"
      Statement {
        Effect   = "Allow"
        Actions  = ["ssm:UpdateInstanceInformation"]
        Resource = ["*"]
      }
    }
  }
}
