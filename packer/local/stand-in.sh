#!/usr/bin/env bash
# shell-local stand-in for the remote provisioning of ../eks-cis.pkr.hcl (local build only).
# Nothing runs on the emulated instance, so exercise the same scripts on a throwaway root here:
# a syntax check of scripts/cis-harden.sh (a full run with LOCAL_HARDEN=true), then the real
# scripts/cleanup.sh on a tree seeded with what it must remove.
#
# Environment (set by the template): SCRIPTS_DIR, CIS_PLATFORM, CIS_LEVEL, LOCAL_HARDEN.
set -euo pipefail

scripts="${SCRIPTS_DIR:?SCRIPTS_DIR is not set}"
platform="${CIS_PLATFORM:?CIS_PLATFORM is not set}"
level="${CIS_LEVEL:?CIS_LEVEL is not set}"
work="$(mktemp -d)"
trap 'rm -rf -- "$work"' EXIT

echo "stand-in: remote step would be: sudo CIS_ROOT=/ bash cis-harden.sh --platform $platform --level $level"
if [[ -f "$scripts/cis-harden.sh" ]]; then
  bash -n "$scripts/cis-harden.sh"
  if [[ "${LOCAL_HARDEN:-false}" == "true" ]]; then
    CIS_ROOT="$work" bash "$scripts/cis-harden.sh" --platform "$platform" --level "$level"
  fi
else
  echo "stand-in: $scripts/cis-harden.sh not found; hardening skipped"
fi

mkdir -p "$work/etc/ssh" "$work/root/.ssh" "$work/home/ec2-user/.ssh" \
  "$work/var/lib/cloud/instances/i-local" "$work/opt/cis-ami-build"
touch "$work/etc/ssh/ssh_host_ed25519_key" "$work/etc/ssh/ssh_host_ed25519_key.pub" \
  "$work/root/.ssh/authorized_keys" "$work/home/ec2-user/.ssh/authorized_keys" \
  "$work/opt/cis-ami-build/cis-harden.sh"
CLEANUP_ROOT="$work" CIS_AMI_STAGING=/opt/cis-ami-build bash "$scripts/cleanup.sh"
