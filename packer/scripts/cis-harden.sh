#!/usr/bin/env bash
# CIS hardening of an Amazon EKS worker node (run as root by the Packer build).
#
#   cis-harden.sh --platform al2023|al2 --level 1|2
#
# Applies every recommendation of the platform's benchmark (CIS Amazon Linux 2023 v1.0.0 or
# CIS Amazon Linux 2 v2.0.0) up to the level: the scripts in cis/<platform>/section{1..6}.sh (which source cis/shared/)
# hold one function per recommendation (cis_<id>), each printing exactly one line
#   <id> <title>: applied | already compliant | skipped (<reason>) | failed (<reason>)
# Level 2 recommendations are skipped at level 1 with the reason "level 2". Exit status: 0 when
# nothing failed, 1 when a remediation failed, 2 for invalid arguments or a wrong system.
#
# The hardening is EKS-aware: IP forwarding stays on, no host firewall blocks the kubelet,
# kube-proxy, the VPC CNI or EKS Pod Identity, container and kubelet paths are left alone,
# containerd, the kubelet, nodeadm / bootstrap.sh and the SSM agent keep running, and sshd is
# not restarted (Packer's session stays up). What it knowingly leaves is exactly the approved
# exceptions in policies/exceptions/. After the recommendations it writes the EKS node
# requirements the node-readiness probe (node/probe.sh) checks (lib.sh node_requirements).
#
# Environment:
#   CIS_ROOT         root of the system to harden (default /); every file path is taken under it
#   CIS_LIVE         1: also change the running system (sysctl -w, modprobe -r, ...);
#                    default 1 for CIS_ROOT=/ and 0 otherwise
#   CIS_DATA_DEVICE  the second EBS volume for /var, /var/tmp, /var/log, /var/log/audit and
#                    /home (default /dev/xvdb)
#   CIS_DATA_DEVICE_TIMEOUT  how long boot waits for that volume before going on without it
#                    (fstab x-systemd.device-timeout, with nofail; default 10s)
#   CIS_ARCH         x86_64 | aarch64 (default: uname -m), selects the audited syscall tables
#   CIS_AUDIT_FULL_ACTION  suspend (default) | single | halt: auditd's admin_space_left_action
#                    and disk_full_action (level 2; only single/halt satisfy 5.2.2.3 / AL2 4.1.2.3)
#   CIS_SELINUX_MODE permissive (default, as the EKS-optimized AMI ships) | enforcing: the
#                    SELINUX= of /etc/selinux/config (1.6.1.4; 1.6.1.5 at level 2)
#   CIS_VERBOSE      1 (default): explain every change on stderr
set -o nounset -o pipefail

usage() {
  echo "usage: cis-harden.sh --platform al2023|al2 --level 1|2" >&2
  exit 2
}

platform=""
level=""
while (($# > 0)); do
  case $1 in
  --platform)
    platform=${2:-}
    shift 2 || usage
    ;;
  --platform=*)
    platform=${1#*=}
    shift
    ;;
  --level)
    level=${2:-}
    shift 2 || usage
    ;;
  --level=*)
    level=${1#*=}
    shift
    ;;
  -h | --help) usage ;;
  *)
    echo "cis-harden: unknown argument: $1" >&2
    usage
    ;;
  esac
done
[[ $platform == al2023 || $platform == al2 ]] || usage
[[ $level == 1 || $level == 2 ]] || usage

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=cis/lib.sh source-path=SCRIPTDIR
. "$here/cis/lib.sh"
cis_init "$platform" "$level" || exit 2
trap 'rm -rf -- "$CIS_STATE"' EXIT

for section in 1 2 3 4 5 6; do
  # shellcheck disable=SC1090  # one of cis/al2023/section*.sh or cis/al2/section*.sh
  . "$here/cis/$platform/section$section.sh"
done

echo "cis-harden: CIS ${platform} level ${level} on ${CIS_ROOT:-/} (${CIS_ARCH})" >&2
failed=0
while IFS= read -r fn; do
  cis_run_one "$fn" || failed=$((failed + 1))
done < <(cis_functions)

node_requirements || failed=$((failed + 1))
cis_finalize || failed=$((failed + 1))

summary=$(cut -f2 "$CIS_STATE/results" | sed -e 's/ (.*//' | sort | uniq -c | sed -e 's/^ *//' | paste -sd, -)
echo "cis-harden: done: ${summary//,/, }" >&2
if ((failed > 0)); then
  echo "cis-harden: $failed step(s) failed" >&2
  exit 1
fi
exit 0
