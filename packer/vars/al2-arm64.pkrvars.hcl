# al2 on arm64: the EKS-optimized base AMI is resolved by the pipeline (SSM public parameter).
platform      = "al2"
architecture  = "arm64"
instance_type = "m6g.large"
