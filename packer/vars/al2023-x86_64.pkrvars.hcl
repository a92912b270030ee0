# al2023 on x86_64: the EKS-optimized base AMI is resolved by the pipeline (SSM public parameter).
platform      = "al2023"
architecture  = "x86_64"
instance_type = "m6i.large"
