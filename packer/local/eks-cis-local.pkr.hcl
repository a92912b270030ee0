# Stand-in of ../eks-cis.pkr.hcl for a build against the project's local AWS (moto), valid for
# Debian's packer 1.6.6. It creates a real AMI in the local AWS, with the SAME provenance tags and
# manifest as the production template (tests/build/test_templates.py compares them), but:
#   * communicator = "none": nothing runs on the (emulated) instance; a shell-local step stands
#     in for the remote hardening (runs scripts/cleanup.sh against a throwaway root, and
#     scripts/cis-harden.sh too when local_harden = true);
#   * only EC2 is redirected (custom_endpoint_ec2), so no Session Manager, no IAM profile;
#   * 1.6.6 has no metadata_options, imds_support or deprecate_at: IMDSv2 and deprecation are
#     asserted on the production template by the python-hcl2 tests instead.
# Never point this template at real AWS: it would register an unhardened copy of the base AMI.

variable "platform" {
  type = string
  validation {
    condition     = contains(["al2023", "al2"], var.platform)
    error_message = "The platform must be al2023 or al2."
  }
}

variable "architecture" {
  type = string
  validation {
    condition     = contains(["x86_64", "arm64"], var.architecture)
    error_message = "The architecture must be x86_64 or arm64."
  }
}

variable "kubernetes_version" {
  type = string
}

variable "source_ami" {
  type = string
}

variable "hardening_level" {
  type    = number
  default = 1
  validation {
    condition     = contains([1, 2], var.hardening_level)
    error_message = "The hardening_level must be 1 or 2."
  }
}

variable "run_id" {
  type = string
}

variable "git_commit" {
  type    = string
  default = "unknown"
}

variable "manifest_path" {
  type    = string
  default = "packer-manifest.json"
}

variable "region" {
  type    = string
  default = "us-east-1"
}

variable "instance_type" {
  type = string
}

variable "ec2_endpoint" {
  type        = string
  description = "EC2 endpoint of the local AWS, e.g. http://127.0.0.1:5000."
}

variable "kms_key_id" {
  type    = string
  default = ""
}

# The network the pipeline chose and checked (pipeline/aws/network.py), as for the production
# template.
variable "subnet_id" {
  type    = string
  default = ""
}

variable "associate_public_ip_address" {
  type    = bool
  default = false
}

variable "security_group_id" {
  type    = string
  default = ""
}

variable "root_volume_size" {
  type    = number
  default = 20
}

variable "data_volume_size" {
  type    = number
  default = 64
}

variable "local_harden" {
  type        = bool
  description = "Also run scripts/cis-harden.sh against the throwaway root (slower)."
  default     = false
}

locals {
  platform_names = {
    al2023 = "AMAZON_LINUX_2023"
    al2    = "AMAZON_LINUX_2"
  }
  benchmarks = {
    al2023 = "CIS Amazon Linux 2023 Benchmark v1.0.0"
    al2    = "CIS Amazon Linux 2 Benchmark v2.0.0"
  }
  image_name = "eks-cis-${var.platform}-${var.architecture}-k8s${var.kubernetes_version}-l${var.hardening_level}"
  ami_name   = "${local.image_name}-${var.run_id}"

  provenance_tags = {
    "Name"                       = local.ami_name
    "cis-ami:source-ami"         = var.source_ami
    "cis-ami:kubernetes-version" = var.kubernetes_version
    "cis-ami:platform"           = local.platform_names[var.platform]
    "cis-ami:architecture"       = var.architecture
    "cis-ami:hardening-level"    = "${var.hardening_level}"
    "cis-ami:benchmark"          = local.benchmarks[var.platform]
    "cis-ami:git-commit"         = var.git_commit
    "cis-ami:run-id"             = var.run_id
    "cis-ami:built-by"           = "eks-cis-ami-pipeline"
    "cis-ami:local"              = "true"
    "cis-pipeline:managed"       = "true"
  }
  # Packer's temporary resources (instance, volumes, security group, key pair) carry these too:
  # the ownership tag and run ID let `invoke reap` find them after a killed build; the pipeline
  # re-stamps the heartbeat while packer runs (pipeline/heartbeat.py).
  run_tags = {
    "Name"                   = "eks-cis-ami-build-${var.run_id}"
    "cis-ami:run-id"         = var.run_id
    "cis-ami:built-by"       = "eks-cis-ami-pipeline"
    "cis-pipeline:managed"   = "true"
    "cis-pipeline:heartbeat" = timestamp()
  }
  manifest_data = {
    run_id             = var.run_id
    image_name         = local.image_name
    platform           = local.platform_names[var.platform]
    architecture       = var.architecture
    kubernetes_version = var.kubernetes_version
    hardening_level    = "${var.hardening_level}"
    benchmark          = local.benchmarks[var.platform]
    source_ami         = var.source_ami
    git_commit         = var.git_commit
    local              = "true"
  }
}

source "amazon-ebs" "eks-cis" {
  region          = var.region
  source_ami      = var.source_ami
  instance_type   = var.instance_type
  ami_name        = local.ami_name
  ami_description = "EKS ${var.kubernetes_version} node, ${local.benchmarks[var.platform]} Level ${var.hardening_level}, ${var.architecture}, from ${var.source_ami} (local build)"

  custom_endpoint_ec2        = var.ec2_endpoint
  skip_credential_validation = true
  skip_metadata_api_check    = true
  skip_region_validation     = true
  communicator               = "none"
  # Nothing connects to the instance; keep Packer's temporary group closed all the same.
  temporary_security_group_source_cidrs = ["127.0.0.1/32"]

  # No encrypt_boot: the AMI's snapshots keep the launch volumes' encryption (as in production).
  tags          = local.provenance_tags
  snapshot_tags = local.provenance_tags

  subnet_id                   = var.subnet_id
  associate_public_ip_address = var.associate_public_ip_address
  security_group_ids          = compact([var.security_group_id])
  run_tags                    = local.run_tags
  run_volume_tags             = local.run_tags

  launch_block_device_mappings {
    device_name           = "/dev/xvda"
    volume_size           = var.root_volume_size
    volume_type           = "gp3"
    iops                  = 3000
    throughput            = 125
    encrypted             = true
    kms_key_id            = var.kms_key_id
    delete_on_termination = true
  }
  launch_block_device_mappings {
    device_name           = "/dev/xvdb"
    volume_size           = var.data_volume_size
    volume_type           = "gp3"
    iops                  = 3000
    throughput            = 125
    encrypted             = true
    kms_key_id            = var.kms_key_id
    delete_on_termination = true
  }
  ami_block_device_mappings {
    device_name           = "/dev/xvdb"
    volume_size           = var.data_volume_size
    volume_type           = "gp3"
    iops                  = 3000
    throughput            = 125
    encrypted             = true
    delete_on_termination = true
  }
}

build {
  name    = "eks-cis"
  sources = ["source.amazon-ebs.eks-cis"]

  provisioner "shell-local" {
    script = "${path.root}/stand-in.sh"
    environment_vars = [
      "SCRIPTS_DIR=${path.root}/../scripts",
      "CIS_PLATFORM=${var.platform}",
      "CIS_LEVEL=${var.hardening_level}",
      "LOCAL_HARDEN=${var.local_harden}",
    ]
  }

  post-processor "manifest" {
    output      = var.manifest_path
    strip_path  = true
    custom_data = local.manifest_data
  }
}
