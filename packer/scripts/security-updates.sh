#!/usr/bin/env bash
# Security updates of the base AMI, applied by the build before the hardening (run as root).
#
# Packer variables (packer/README.md, "Security updates"):
#   security_updates            -> SECURITY_UPDATES            true (default) | false
#   security_updates_releasever -> SECURITY_UPDATES_RELEASEVER latest (default) | 2023.N.YYYYMMDD
#   platform                    -> SECURITY_UPDATES_PLATFORM   al2023 | al2
#
# Amazon Linux 2023 repositories are versioned: each release is immutable and an AMI is locked
# to the release it was built from, so `dnf upgrade --security` on the base AMI alone finds
# nothing published since. The update is taken from the release named by
# SECURITY_UPDATES_RELEASEVER: "latest" (the newest release when the build runs; the image is
# then validated, CVE gate included, before anything is promoted), or a dated release to rebuild
# exactly the same package set. Only packages with a security advisory are upgraded; the
# base AMI's version locks (kernel, containerd, amazon-ec2-net-utils) are honoured, and the
# image stays locked to its own release for later dnf runs. Amazon Linux 2 has one repository:
# `yum update --security`. Exit status: 0 applied or skipped, 1 the package manager failed,
# 2 invalid settings.
set -euo pipefail

updates="${SECURITY_UPDATES:-true}"
releasever="${SECURITY_UPDATES_RELEASEVER:-latest}"
platform="${SECURITY_UPDATES_PLATFORM:-}"

log() { printf 'security-updates: %s\n' "$*"; }
die() {
  printf 'security-updates: %s\n' "$*" >&2
  exit 2
}

case "$updates" in
false)
  log "skipped (security_updates = false): the image keeps the base AMI's packages"
  exit 0
  ;;
true) ;;
*) die "SECURITY_UPDATES=$updates: expected true or false" ;;
esac

case "$platform" in
al2023)
  if [[ "$releasever" != latest && ! "$releasever" =~ ^2023\.[0-9]+\.[0-9]{8}$ ]]; then
    die "SECURITY_UPDATES_RELEASEVER=$releasever: expected latest or a release like 2023.9.20251117"
  fi
  before="$(rpm -q system-release 2>/dev/null || echo unknown)"
  log "dnf upgrade --security from release $releasever (base: $before)"
  dnf -y --releasever="$releasever" upgrade --security
  log "applied (release $releasever)"
  ;;
al2)
  if [[ "$releasever" != latest ]]; then
    die "SECURITY_UPDATES_RELEASEVER=$releasever: Amazon Linux 2 has no versioned repositories (use latest)"
  fi
  log "yum update --security"
  yum -y update --security
  log "applied"
  ;;
*) die "SECURITY_UPDATES_PLATFORM=$platform: expected al2023 or al2" ;;
esac
