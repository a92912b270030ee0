# CIS-hardened Amazon EKS worker-node AMI, built from the EKS-optimized AMI (var.source_ami).
#
# The build instance is reached through Session Manager (no inbound port), requires IMDSv2 and
# has encrypted volumes (var.kms_key_id); the AMI's snapshots are taken of those volumes and keep
# their encryption; the AMI is IMDSv2-only and deprecated after var.ami_deprecation_days. Provenance is written as AMI tags (local.provenance_tags) and as the
# manifest's custom_data; the pipeline reads the AMI ID from the manifest, never from logs.
# packer/local/eks-cis-local.pkr.hcl repeats the tags for the build against the local AWS;
# tests/build/test_templates.py keeps the two in step.

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

  # The tag contract: pipeline/packer.py provenance_tags() computes the same map; the local AWS
  # reads cis-ami:platform and cis-ami:hardening-level. Keys starting with "cis:" are reserved
  # for validation outcomes written after the scan.
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
    "cis-ami:local"              = "false"
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
    local              = "false"
  }

  deprecate_at = timeadd(timestamp(), "${var.ami_deprecation_days * 24}h")
  # Staging directory for the hardening scripts: on the root file system, because the hardening
  # may mount fresh file systems over /tmp, /var/tmp and /home while it runs.
  remote_dir = "/opt/cis-ami-build"
}

source "amazon-ebs" "eks-cis" {
  region          = var.region
  source_ami      = var.source_ami
  instance_type   = var.instance_type
  ami_name        = local.ami_name
  ami_description = "EKS ${var.kubernetes_version} node, ${local.benchmarks[var.platform]} Level ${var.hardening_level}, ${var.architecture}, from ${var.source_ami}"
  ena_support     = true

  # The AMI: IMDSv2 only for instances launched from it, deprecated after N days. No
  # encrypt_boot/kms_key_id and no ami_regions here: the snapshots of the encrypted launch volumes
  # are encrypted with the same key, and either setting makes the plugin copy the AMI without
  # request tags and tag the copy's snapshots afterwards, which policies/iam/build.json does not
  # allow (pipeline/aws/packer.py COPY_CALLS). Copies to other regions are `invoke promote
  # --regions` (tagged on create, encrypted with pipeline.release.kms_keys).
  imds_support  = "v2.0"
  deprecate_at  = local.deprecate_at
  tags          = local.provenance_tags
  snapshot_tags = local.provenance_tags

  # The build instance: in the subnet the pipeline chose and checked (a zone offering the
  # instance type, a route to SSM: pipeline/aws/network.py), IMDSv2 required, tagged with the run
  # ID. An empty security_group_id lets Packer create a temporary group (no ingress with SSM).
  subnet_id                   = var.subnet_id
  associate_public_ip_address = var.associate_public_ip_address
  security_group_ids          = compact([var.security_group_id])
  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = var.imds_hop_limit
    instance_metadata_tags      = "disabled"
  }
  run_tags        = local.run_tags
  run_volume_tags = local.run_tags

  # Session Manager by default: SSH is tunnelled through SSM, so Packer opens no inbound port
  # (it skips the temporary security group's SSH rule when session_manager is used).
  communicator                          = "ssh"
  ssh_username                          = var.ssh_username
  ssh_interface                         = var.ssh_interface
  temporary_key_pair_type               = "ed25519"
  temporary_security_group_source_cidrs = var.ssh_source_cidrs
  iam_instance_profile                  = var.iam_instance_profile

  # Without a named profile, Packer creates a temporary one allowing just the Session Manager
  # channel (https://docs.aws.amazon.com/systems-manager/latest/userguide/getting-started-create-iam-instance-profile.html).
  dynamic "temporary_iam_instance_profile_policy_document" {
    for_each = var.iam_instance_profile == "" ? [1] : []
    content {
      Version = "2012-10-17"
      Statement {
        Effect = "Allow"
        Action = [
          "ssm:UpdateInstanceInformation",
          "ssmmessages:CreateControlChannel",
          "ssmmessages:CreateDataChannel",
          "ssmmessages:OpenControlChannel",
          "ssmmessages:OpenDataChannel",
        ]
        Resource = ["*"]
      }
    }
  }

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
  # Partitioned by the hardening into /var, /var/log, /var/log/audit, /var/tmp and /home.
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
  # No kms_key_id here: the plugin documents it for launch_block_device_mappings only, and a key
  # in an AMI mapping is sent with the image registration, which EC2 rejects
  # (https://github.com/hashicorp/packer/issues/6212). The AMI's snapshots are taken of the
  # launch volumes, encrypted with var.kms_key_id, and keep that key.
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

  provisioner "shell" {
    inline = ["sudo install -d -m 0755 -o ${var.ssh_username} ${local.remote_dir}"]
  }

  provisioner "file" {
    source      = "${path.root}/scripts/"
    destination = local.remote_dir
  }

  # Security updates before the hardening, so that the hardening and its AIDE database see the
  # packages that ship (security_updates, security_updates_releasever; README.md).
  provisioner "shell" {
    script          = "${path.root}/scripts/security-updates.sh"
    execute_command = "sudo env {{ .Vars }} bash '{{ .Path }}'"
    environment_vars = [
      "SECURITY_UPDATES=${var.security_updates}",
      "SECURITY_UPDATES_RELEASEVER=${var.security_updates_releasever}",
      "SECURITY_UPDATES_PLATFORM=${var.platform}",
    ]
  }

  provisioner "shell" {
    inline = [
      "sudo CIS_ROOT=/ CIS_AUDIT_FULL_ACTION=${var.audit_full_action} CIS_SELINUX_MODE=${var.selinux_mode} bash ${local.remote_dir}/cis-harden.sh --platform ${var.platform} --level ${var.hardening_level}",
    ]
  }

  # Last step: remove the staging directory, host keys, authorized_keys and cloud-init state,
  # then fail the build if any of them is still there.
  provisioner "shell" {
    script           = "${path.root}/scripts/cleanup.sh"
    execute_command  = "sudo env {{ .Vars }} bash '{{ .Path }}'"
    environment_vars = ["CIS_AMI_STAGING=${local.remote_dir}"]
  }

  post-processor "manifest" {
    output      = var.manifest_path
    strip_path  = true
    custom_data = local.manifest_data
  }
}
