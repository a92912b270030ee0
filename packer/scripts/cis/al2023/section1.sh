# shellcheck shell=bash
# CIS Amazon Linux 2023 Benchmark v1.0.0, section 1: initial setup (file systems, software
# updates, integrity checking, boot settings, process hardening, SELinux, banners, crypto policy).
# Sourced by cis-harden.sh after lib.sh; one function per recommendation.

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

cis_1_3_1() {
  cis_rec 1 "Ensure AIDE is installed" || return 0
  # the database is initialised at the end of the run (cis_finalize), after every other change
  pkg_install aide
  cis_done
}

cis_1_3_2() {
  cis_rec 1 "Ensure filesystem integrity is regularly checked" || return 0
  aide_timer
  cis_done
}

cis_1_3_3() {
  cis_rec 1 "Ensure cryptographic mechanisms are used to protect the integrity of audit tools" || return 0
  aide_audit_tools
  cis_done
}

cis_1_4_1() {
  cis_rec 1 "Ensure permissions on bootloader config are configured" || return 0
  bootloader_permissions
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

cis_1_6_1_1() {
  cis_rec 1 "Ensure SELinux is installed" || return 0
  pkg_install libselinux
  cis_done
}

cis_1_6_1_2() {
  cis_rec 1 "Ensure SELinux is not disabled in bootloader configuration" || return 0
  kernel_arg_absent selinux=0
  kernel_arg_absent enforcing=0
  cis_done
}

cis_1_6_1_3() {
  cis_rec 1 "Ensure SELinux policy is configured" || return 0
  pkg_install selinux-policy-targeted
  conf_set /etc/selinux/config SELINUXTYPE SELINUXTYPE=targeted
  cis_done
}

cis_1_6_1_4() {
  cis_rec 1 "Ensure the SELinux mode is not disabled" || return 0
  selinux_mode_at_least permissive
  cis_done
}

cis_1_6_1_5() {
  cis_rec 2 "Ensure the SELinux mode is enforcing" || return 0
  selinux_mode_at_least enforcing
  cis_done
}

cis_1_6_1_6() {
  cis_rec 1 "Ensure no unconfined services exist" || return 0
  cis_skip_excepted "the unconfined processes are container processes; workloads get their own security context"
}

cis_1_6_1_7() {
  cis_rec 1 "Ensure SETroubleshoot is not installed" || return 0
  pkg_remove setroubleshoot
  cis_done
}

cis_1_6_1_8() {
  cis_rec 1 "Ensure the MCS Translation Service (mcstrans) is not installed" || return 0
  pkg_remove mcstrans
  cis_done
}

cis_1_7_1() {
  cis_rec 1 "Ensure message of the day is configured properly" || return 0
  banner_file /etc/motd
  cis_done
}

cis_1_7_2() {
  cis_rec 1 "Ensure local login warning banner is configured properly" || return 0
  banner_file /etc/issue
  cis_done
}

cis_1_7_3() {
  cis_rec 1 "Ensure remote login warning banner is configured properly" || return 0
  banner_file /etc/issue.net
  cis_done
}

cis_1_7_4() {
  cis_rec 1 "Ensure permissions on /etc/motd are configured" || return 0
  limit_mode /etc/motd 0644 root root
  cis_done
}

cis_1_7_5() {
  cis_rec 1 "Ensure permissions on /etc/issue are configured" || return 0
  limit_mode /etc/issue 0644 root root
  cis_done
}

cis_1_7_6() {
  cis_rec 1 "Ensure permissions on /etc/issue.net are configured" || return 0
  limit_mode /etc/issue.net 0644 root root
  cis_done
}

cis_1_9() {
  cis_rec 1 "Ensure system-wide crypto policy is not legacy" || return 0
  crypto_policy_not_legacy
  cis_done
}
