# shellcheck shell=bash
# CIS Amazon Linux 2023 Benchmark v1.0.0, section 1: initial setup (file systems, software
# updates, integrity checking, boot settings, process hardening, SELinux, banners, crypto policy).
# Sourced by cis-harden.sh after lib.sh; one function per recommendation.

# The recommendations of this section that both benchmarks share (same ID, title, level and
# remediation) are defined once, in ../shared/section1.sh; this file never redefines them.
# shellcheck source=../shared/section1.sh source-path=SCRIPTDIR
. "$(dirname "${BASH_SOURCE[0]}")/../shared/section1.sh"

cis_1_1_1_1() {
  cis_rec 2 "Ensure mounting of squashfs filesystems is disabled" || return 0
  module_disable squashfs
  cis_done
}

cis_1_1_1_2() {
  cis_rec 2 "Ensure mounting of udf filesystems is disabled" || return 0
  module_disable udf
  cis_done
}

cis_1_1_1_3() {
  cis_rec 1 "Ensure mounting of cramfs filesystems is disabled" || return 0
  module_disable cramfs
  cis_done
}

cis_1_1_1_4() {
  cis_rec 1 "Ensure mounting of freevxfs filesystems is disabled" || return 0
  module_disable freevxfs
  cis_done
}

cis_1_1_1_5() {
  cis_rec 1 "Ensure mounting of jffs2 filesystems is disabled" || return 0
  module_disable jffs2
  cis_done
}

cis_1_1_1_6() {
  cis_rec 1 "Ensure mounting of hfs filesystems is disabled" || return 0
  module_disable hfs
  cis_done
}

cis_1_1_1_7() {
  cis_rec 1 "Ensure mounting of hfsplus filesystems is disabled" || return 0
  module_disable hfsplus
  cis_done
}

cis_1_1_2_1() {
  cis_rec 1 "Ensure /tmp is a separate partition" || return 0
  tmp_tmpfs
  cis_done
}

cis_1_1_2_2() {
  cis_rec 1 "Ensure nodev option set on /tmp partition" || return 0
  tmp_tmpfs
  fstab_option /tmp nodev
  cis_done
}

cis_1_1_2_3() {
  cis_rec 1 "Ensure noexec option set on /tmp partition" || return 0
  tmp_tmpfs
  fstab_option /tmp noexec
  cis_done
}

cis_1_1_2_4() {
  cis_rec 1 "Ensure nosuid option set on /tmp partition" || return 0
  tmp_tmpfs
  fstab_option /tmp nosuid
  cis_done
}

cis_1_1_3_1() {
  cis_rec 2 "Ensure separate partition exists for /var" || return 0
  data_volume /var
  cis_done
}

cis_1_1_3_2() {
  cis_rec 1 "Ensure nodev option set on /var partition" || return 0
  data_volume /var
  fstab_option /var nodev
  cis_done
}

cis_1_1_3_3() {
  cis_rec 1 "Ensure nosuid option set on /var partition" || return 0
  data_volume /var
  fstab_option /var nosuid
  cis_done
}

cis_1_1_4_1() {
  cis_rec 2 "Ensure separate partition exists for /var/tmp" || return 0
  data_volume /var/tmp
  cis_done
}

cis_1_1_4_2() {
  cis_rec 1 "Ensure noexec option set on /var/tmp partition" || return 0
  data_volume /var/tmp
  fstab_option /var/tmp noexec
  cis_done
}

cis_1_1_4_3() {
  cis_rec 1 "Ensure nosuid option set on /var/tmp partition" || return 0
  data_volume /var/tmp
  fstab_option /var/tmp nosuid
  cis_done
}

cis_1_1_4_4() {
  cis_rec 1 "Ensure nodev option set on /var/tmp partition" || return 0
  data_volume /var/tmp
  fstab_option /var/tmp nodev
  cis_done
}

cis_1_1_5_1() {
  cis_rec 2 "Ensure separate partition exists for /var/log" || return 0
  data_volume /var/log
  cis_done
}

cis_1_1_5_2() {
  cis_rec 1 "Ensure nodev option set on /var/log partition" || return 0
  data_volume /var/log
  fstab_option /var/log nodev
  cis_done
}

cis_1_1_5_3() {
  cis_rec 1 "Ensure noexec option set on /var/log partition" || return 0
  data_volume /var/log
  fstab_option /var/log noexec
  cis_done
}

cis_1_1_5_4() {
  cis_rec 1 "Ensure nosuid option set on /var/log partition" || return 0
  data_volume /var/log
  fstab_option /var/log nosuid
  cis_done
}

cis_1_1_6_1() {
  cis_rec 2 "Ensure separate partition exists for /var/log/audit" || return 0
  data_volume /var/log/audit
  cis_done
}

cis_1_1_6_2() {
  cis_rec 1 "Ensure noexec option set on /var/log/audit partition" || return 0
  data_volume /var/log/audit
  fstab_option /var/log/audit noexec
  cis_done
}

cis_1_1_6_3() {
  cis_rec 1 "Ensure nodev option set on /var/log/audit partition" || return 0
  data_volume /var/log/audit
  fstab_option /var/log/audit nodev
  cis_done
}

cis_1_1_6_4() {
  cis_rec 1 "Ensure nosuid option set on /var/log/audit partition" || return 0
  data_volume /var/log/audit
  fstab_option /var/log/audit nosuid
  cis_done
}

cis_1_1_7_1() {
  cis_rec 2 "Ensure separate partition exists for /home" || return 0
  data_volume /home
  cis_done
}

cis_1_1_7_2() {
  cis_rec 1 "Ensure nodev option set on /home partition" || return 0
  data_volume /home
  fstab_option /home nodev
  cis_done
}

cis_1_1_7_3() {
  cis_rec 1 "Ensure nosuid option set on /home partition" || return 0
  data_volume /home
  fstab_option /home nosuid
  cis_done
}

cis_1_1_8_1() {
  cis_rec 1 "Ensure /dev/shm is a separate partition" || return 0
  shm_tmpfs
  cis_done
}

cis_1_1_8_2() {
  cis_rec 1 "Ensure nodev option set on /dev/shm partition" || return 0
  shm_tmpfs
  fstab_option /dev/shm nodev
  cis_done
}

cis_1_1_8_3() {
  cis_rec 1 "Ensure noexec option set on /dev/shm partition" || return 0
  shm_tmpfs
  fstab_option /dev/shm noexec
  cis_done
}

cis_1_1_8_4() {
  cis_rec 1 "Ensure nosuid option set on /dev/shm partition" || return 0
  shm_tmpfs
  fstab_option /dev/shm nosuid
  cis_done
}

cis_1_1_9() {
  cis_rec 1 "Ensure usb-storage is disabled" || return 0
  module_disable usb-storage
  cis_done
}

cis_1_2_2() {
  cis_rec 1 "Ensure gpgcheck is globally activated" || return 0
  gpgcheck_on /etc/dnf/dnf.conf
  cis_done
}

cis_1_3_3() {
  cis_rec 1 "Ensure cryptographic mechanisms are used to protect the integrity of audit tools" || return 0
  aide_audit_tools
  cis_done
}

cis_1_5_1() {
  cis_rec 1 "Ensure address space layout randomization (ASLR) is enabled" || return 0
  sysctl_set kernel.randomize_va_space 2
  cis_done
}

cis_1_5_2() {
  cis_rec 1 "Ensure ptrace_scope is restricted" || return 0
  sysctl_set kernel.yama.ptrace_scope 1
  cis_done
}

cis_1_5_3() {
  cis_rec 1 "Ensure core dump storage is disabled" || return 0
  ini_set /etc/systemd/coredump.conf Coredump Storage none
  cis_done
}

cis_1_5_4() {
  cis_rec 1 "Ensure core dump backtraces are disabled" || return 0
  ini_set /etc/systemd/coredump.conf Coredump ProcessSizeMax 0
  cis_done
}

cis_1_6_1_4() {
  cis_rec 1 "Ensure the SELinux mode is not disabled" || return 0
  # at least permissive; enforcing when the build chose it (selinux_mode), at level 1 as well
  selinux_check_mode
  selinux_mode_at_least "$CIS_SELINUX_MODE"
  cis_done
}

cis_1_9() {
  cis_rec 1 "Ensure system-wide crypto policy is not legacy" || return 0
  crypto_policy_not_legacy
  cis_done
}
