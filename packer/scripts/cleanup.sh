#!/usr/bin/env bash
# Last provisioning step of the AMI build (run as root): remove what must not ship in the AMI,
# then fail the build if any of it is still there (compare amazon-eks-ami's validate step).
#
# Environment:
#   CLEANUP_ROOT     root of the tree to clean (default /); tests and the local build use a
#                    throwaway directory. Live-system commands (cloud-init, dnf/yum) run only for /.
#   CIS_AMI_STAGING  staging directory of the uploaded scripts, removed first (optional).
set -euo pipefail
shopt -s nullglob

root="${CLEANUP_ROOT:-/}"
root="${root%/}" # "" for the live system
staging="${CIS_AMI_STAGING:-}"

log() { printf 'cleanup: %s\n' "$*"; }

# 1. The staging directory of the hardening scripts.
if [[ -n "$staging" ]]; then
  case "$staging" in
  /opt/?* | /tmp/?*) rm -rf -- "${root}${staging}" ;;
  *)
    log "refusing to remove unexpected staging path: $staging"
    exit 2
    ;;
  esac
fi

# 2. SSH host keys: every instance must generate its own at first boot.
rm -f -- "${root}"/etc/ssh/ssh_host_*

# 3. authorized_keys of root and of every user under /home (the build's temporary key).
rm -f -- "${root}"/root/.ssh/authorized_keys "${root}"/home/*/.ssh/authorized_keys

# 4. cloud-init state, so that instances launched from the AMI run cloud-init afresh.
if [[ -z "$root" ]] && command -v cloud-init >/dev/null 2>&1; then
  cloud-init clean --logs
fi
rm -rf -- "${root}"/var/lib/cloud/instances "${root}"/var/lib/cloud/instance \
  "${root}"/var/lib/cloud/data "${root}"/var/lib/cloud/sem
rm -f -- "${root}"/var/log/cloud-init.log "${root}"/var/log/cloud-init-output.log

# 5. Machine identity (systemd regenerates an empty machine-id at first boot) and shell history.
if [[ -f "${root}/etc/machine-id" ]]; then
  : >"${root}/etc/machine-id"
fi
rm -f -- "${root}"/root/.bash_history "${root}"/home/*/.bash_history

# 6. Package manager caches (live system only).
if [[ -z "$root" ]]; then
  if command -v dnf >/dev/null 2>&1; then
    dnf clean all
  elif command -v yum >/dev/null 2>&1; then
    yum clean all
  fi
fi

# Validation: nothing of the above may be left.
leftovers=()
for path in "${root}"/etc/ssh/ssh_host_* "${root}"/root/.ssh/authorized_keys \
  "${root}"/home/*/.ssh/authorized_keys "${root}"/var/lib/cloud/instances/*; do
  if [[ -e "$path" || -L "$path" ]]; then
    leftovers+=("$path")
  fi
done
if [[ -n "$staging" && -e "${root}${staging}" ]]; then
  leftovers+=("${root}${staging}")
fi
if ((${#leftovers[@]} > 0)); then
  log "FAILED, still present:"
  printf '  %s\n' "${leftovers[@]}"
  exit 1
fi
log "ok: no ssh host keys, no authorized_keys, no cloud-init state left under ${root:-/}"
