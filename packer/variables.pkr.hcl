# Inputs of the production template. The pipeline (pipeline/build/) passes the per-run values
# with -var; the per-platform/architecture values come from vars/<platform>-<arch>.pkrvars.hcl.

# --- What to build -------------------------------------------------------------------------

variable "platform" {
  type        = string
  description = "Operating system of the EKS-optimized base AMI: al2023 or al2."
  validation {
    condition     = contains(["al2023", "al2"], var.platform)
    error_message = "The platform must be al2023 or al2."
  }
}

variable "architecture" {
  type        = string
  description = "CPU architecture of the base AMI and the build instance: x86_64 or arm64."
  validation {
    condition     = contains(["x86_64", "arm64"], var.architecture)
    error_message = "The architecture must be x86_64 or arm64."
  }
}

variable "kubernetes_version" {
  type        = string
  description = "Kubernetes minor version of the EKS-optimized base AMI, e.g. 1.33."
  validation {
    condition     = can(regex("^1\\.[0-9]+$", var.kubernetes_version))
    error_message = "The kubernetes_version must look like 1.33."
  }
}

variable "source_ami" {
  type        = string
  description = "EKS-optimized base AMI, resolved by the pipeline from the public SSM parameter."
  validation {
    condition     = can(regex("^ami-[0-9a-z]+$", var.source_ami))
    error_message = "The source_ami must be an AMI ID (ami-...)."
  }
}

variable "hardening_level" {
  type        = number
  description = "CIS profile level applied by scripts/cis-harden.sh: 1 or 2."
  default     = 1
  validation {
    condition     = contains([1, 2], var.hardening_level)
    error_message = "The hardening_level must be 1 or 2."
  }
}

# --- Provenance ------------------------------------------------------------------------------

variable "run_id" {
  type        = string
  description = "Pipeline run ID: names the AMI and tags the AMI, the build instance and volumes."
  validation {
    condition     = can(regex("^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$", var.run_id))
    error_message = "The run_id must be 1-64 characters of letters, digits, '.', '_' or '-'."
  }
}

variable "git_commit" {
  type        = string
  description = "Commit of this repository the AMI was built from."
  default     = "unknown"
}

variable "manifest_path" {
  type        = string
  description = "Where the manifest post-processor writes the build's artifact (the AMI IDs)."
  default     = "packer-manifest.json"
}

# --- Where and how the build instance runs -------------------------------------------------

variable "region" {
  type        = string
  description = "AWS region of the build and of the resulting AMI."
  default     = "us-east-1"
}

variable "ami_regions" {
  type        = list(string)
  description = "Not used: the pipeline refuses it (copies to other regions are `invoke promote --regions`)."
  default     = []
}

variable "instance_type" {
  type        = string
  description = "Build instance type (must match the architecture)."
}

variable "subnet_id" {
  type        = string
  description = "Subnet of the build instance (private, with a route to the SSM endpoints). Empty: default VPC."
  default     = ""
}

variable "associate_public_ip_address" {
  type        = bool
  description = "Give the build instance a public IP. Not needed with Session Manager."
  default     = false
}

variable "imds_hop_limit" {
  type        = number
  description = "IMDSv2 PUT response hop limit of the build instance (1, or 2 for containers)."
  default     = 1
  validation {
    condition     = contains([1, 2], var.imds_hop_limit)
    error_message = "The imds_hop_limit must be 1 or 2."
  }
}

variable "iam_instance_profile" {
  type        = string
  description = "Pre-created instance profile whose role has only AmazonSSMManagedInstanceCore (policies/iam/packer-instance-role.json), so the build role needs no iam:CreateRole (policies/iam/build.json). Empty: Packer creates a temporary one, which needs IAM rights build.json does not grant."
  default     = "eks-cis-ami-pipeline-packer"
}

variable "ssh_interface" {
  type        = string
  description = "How Packer reaches the instance: session_manager (no inbound port), private_ip or private_dns."
  default     = "session_manager"
  validation {
    condition     = contains(["session_manager", "private_ip", "private_dns"], var.ssh_interface)
    error_message = "The ssh_interface must be session_manager, private_ip or private_dns (never a public address)."
  }
}

variable "ssh_source_cidrs" {
  type        = list(string)
  description = "Only with ssh_interface = private_ip/private_dns: who may reach port 22 of the temporary security group."
  default     = ["10.0.0.0/8"]
  validation {
    condition     = length(setintersection(var.ssh_source_cidrs, ["0.0.0.0/0", "::/0"])) == 0
    error_message = "SSH must not be open to the internet (0.0.0.0/0 or ::/0)."
  }
}

variable "ssh_username" {
  type        = string
  description = "Login user of the EKS-optimized AMI."
  default     = "ec2-user"
}

# --- Storage and the AMI ---------------------------------------------------------------------

variable "kms_key_id" {
  type        = string
  description = "KMS key (ID, ARN or alias) of the launch volumes, whose snapshots the AMI keeps. Empty: the account's default EBS key."
  default     = ""
}

variable "region_kms_key_ids" {
  type        = map(string)
  description = "Not used: the pipeline refuses it (the copies' keys are pipeline.release.kms_keys)."
  default     = {}
}

variable "root_volume_size" {
  type        = number
  description = "Root volume (/dev/xvda) size in GiB."
  default     = 20
}

variable "data_volume_size" {
  type        = number
  description = "Second volume (/dev/xvdb) in GiB, partitioned by the hardening into /var, /var/log, /var/log/audit, /var/tmp and /home (mounted nofail: a node launched without it still boots)."
  default     = 64
  validation {
    condition     = var.data_volume_size >= 32
    error_message = "The data_volume_size must be at least 32 GiB: /var/tmp, /var/log, /var/log/audit and /home take 24 GiB, /var the rest."
  }
}

variable "ami_deprecation_days" {
  type        = number
  description = "Days after the build when the AMI is marked deprecated (deprecate_at)."
  default     = 90
}

# --- Hardening choices -----------------------------------------------------------------------

variable "audit_full_action" {
  type        = string
  description = "What auditd does when the audit log file system is (nearly) full: admin_space_left_action and disk_full_action (level 2). suspend (default) stops audit logging and keeps the node serving; halt or single follow CIS 5.2.2.3 (AL2: 4.1.2.3) and take the node and all its pods down. See README.md."
  default     = "suspend"
  validation {
    condition     = contains(["suspend", "single", "halt"], var.audit_full_action)
    error_message = "The audit_full_action must be suspend, single or halt."
  }
}

variable "selinux_mode" {
  type        = string
  description = "SELinux mode of the image: permissive (default, as the EKS-optimized AMI ships it, with containerd's SELinux support off) or enforcing (applies CIS 'Ensure the SELinux mode is enforcing', level 2, and sets it at level 1 too). With permissive, that level 2 check fails the scan and needs an approved exception. See README.md."
  default     = "permissive"
  validation {
    condition     = contains(["permissive", "enforcing"], var.selinux_mode)
    error_message = "The selinux_mode must be permissive or enforcing."
  }
}

# --- Security updates ------------------------------------------------------------------------

variable "security_updates" {
  type        = bool
  description = "Apply the packages' security updates before the hardening (scripts/security-updates.sh), so that a fresh image has no fixable vulnerability at the CVE gate's threshold. See README.md."
  default     = true
}

variable "security_updates_releasever" {
  type        = string
  description = "Amazon Linux 2023 release the security updates come from: latest (default; the image is validated before promotion) or a dated release such as 2023.9.20251117 to rebuild the same package set. AL2: latest only. See README.md."
  default     = "latest"
  validation {
    condition     = var.security_updates_releasever == "latest" || can(regex("^2023\\.[0-9]+\\.[0-9]{8}$", var.security_updates_releasever))
    error_message = "The security_updates_releasever must be latest or an AL2023 release like 2023.9.20251117."
  }
}

# --- Network (set by the pipeline: --subnet-id, --security-group-id, --public-ip) ---------------

variable "security_group_id" {
  type        = string
  description = "Security group of the build instance; it must carry cis-pipeline:managed=true. Empty: Packer's temporary group."
  default     = ""
}
