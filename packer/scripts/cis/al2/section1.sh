# shellcheck shell=bash
# CIS Amazon Linux 2 Benchmark v2.0.0, section 1: initial setup (file systems, software
# updates, integrity checking, boot settings, process hardening, SELinux, banners).
# Sourced by cis-harden.sh after lib.sh; one function per recommendation.

cis_1_1_1_1() {
  cis_rec 1 "Ensure mounting of cramfs filesystems is disabled" || return 0
  module_disable cramfs
  cis_done
}

cis_1_1_1_2() {
  cis_rec 1 "Ensure mounting of squashfs filesystems is disabled" || return 0
  module_disable squashfs
  cis_done
}

cis_1_1_1_3() {
  cis_rec 1 "Ensure mounting of udf filesystems is disabled" || return 0
  module_disable udf
  cis_done
}

cis_1_1_2() {
  cis_rec 1 "Ensure /tmp is configured" || return 0
  tmp_tmpfs
  cis_done
}

cis_1_1_3() {
  cis_rec 1 "Ensure noexec option set on /tmp partition" || return 0
  tmp_tmpfs
  fstab_option /tmp noexec
  cis_done
}

cis_1_1_4() {
  cis_rec 1 "Ensure nodev option set on /tmp partition" || return 0
  tmp_tmpfs
  fstab_option /tmp nodev
  cis_done
}

cis_1_1_5() {
  cis_rec 1 "Ensure nosuid option set on /tmp partition" || return 0
  tmp_tmpfs
  fstab_option /tmp nosuid
  cis_done
}

cis_1_1_6() {
  cis_rec 1 "Ensure /dev/shm is configured" || return 0
  shm_tmpfs
  cis_done
}

cis_1_1_7() {
  cis_rec 1 "Ensure noexec option set on /dev/shm partition" || return 0
  shm_tmpfs
  fstab_option /dev/shm noexec
  cis_done
}

cis_1_1_8() {
  cis_rec 1 "Ensure nodev option set on /dev/shm partition" || return 0
  shm_tmpfs
  fstab_option /dev/shm nodev
  cis_done
}

cis_1_1_9() {
  cis_rec 1 "Ensure nosuid option set on /dev/shm partition" || return 0
  shm_tmpfs
  fstab_option /dev/shm nosuid
  cis_done
}

cis_1_1_10() {
  cis_rec 2 "Ensure separate partition exists for /var" || return 0
  data_volume /var
  cis_done
}

cis_1_1_11() {
  cis_rec 2 "Ensure separate partition exists for /var/tmp" || return 0
  data_volume /var/tmp
  cis_done
}

cis_1_1_12() {
  cis_rec 1 "Ensure /var/tmp partition includes the noexec option" || return 0
  data_volume /var/tmp
  fstab_option /var/tmp noexec
  cis_done
}

cis_1_1_13() {
  cis_rec 1 "Ensure /var/tmp partition includes the nodev option" || return 0
  data_volume /var/tmp
  fstab_option /var/tmp nodev
  cis_done
}

cis_1_1_14() {
  cis_rec 1 "Ensure /var/tmp partition includes the nosuid option" || return 0
  data_volume /var/tmp
  fstab_option /var/tmp nosuid
  cis_done
}

cis_1_1_15() {
  cis_rec 2 "Ensure separate partition exists for /var/log" || return 0
  data_volume /var/log
  cis_done
}

cis_1_1_16() {
  cis_rec 2 "Ensure separate partition exists for /var/log/audit" || return 0
  data_volume /var/log/audit
  cis_done
}

cis_1_1_17() {
  cis_rec 2 "Ensure separate partition exists for /home" || return 0
  data_volume /home
  cis_done
}

cis_1_1_18() {
  cis_rec 2 "Ensure /home partition includes the nodev option" || return 0
  data_volume /home
  fstab_option /home nodev
  cis_done
}

cis_1_1_19() {
  cis_rec 1 "Ensure removable media partitions include noexec option" || return 0
  removable_media_option noexec
  cis_done
}

cis_1_1_20() {
  cis_rec 1 "Ensure nodev option set on removable media partitions" || return 0
  removable_media_option nodev
  cis_done
}

cis_1_1_21() {
  cis_rec 1 "Ensure nosuid option set on removable media partitions" || return 0
  removable_media_option nosuid
  cis_done
}

cis_1_1_22() {
  cis_rec 1 "Ensure sticky bit is set on all world-writable directories" || return 0
  # Approved exception for the containerd and kubelet paths (never searched); fixed elsewhere.
  sticky_world_writable_dirs
  cis_done
}

cis_1_1_23() {
  cis_rec 1 "Disable Automounting" || return 0
  pkg_remove autofs
  cis_done
}

cis_1_1_24() {
  cis_rec 1 "Disable USB Storage" || return 0
  module_disable usb-storage
  cis_done
}

cis_1_2_3() {
  cis_rec 1 "Ensure gpgcheck is globally activated" || return 0
  gpgcheck_on /etc/yum.conf
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

cis_1_4_1() {
  cis_rec 1 "Ensure permissions on bootloader config are configured" || return 0
  bootloader_permissions
  cis_done
}

cis_1_4_2() {
  cis_rec 1 "Ensure authentication required for single user mode" || return 0
  single_user_auth
  cis_done
}

cis_1_5_1() {
  cis_rec 1 "Ensure core dumps are restricted" || return 0
  write_file /etc/security/limits.d/50-cis-coredump.conf 0644 <<'EOF'
# CIS: no core dumps
* hard core 0
EOF
  sysctl_set fs.suid_dumpable 0
  if [[ -f $R/etc/systemd/coredump.conf ]]; then
    ini_set /etc/systemd/coredump.conf Coredump Storage none
    ini_set /etc/systemd/coredump.conf Coredump ProcessSizeMax 0
  fi
  cis_done
}

cis_1_5_3() {
  cis_rec 1 "Ensure address space layout randomization (ASLR) is enabled" || return 0
  sysctl_set kernel.randomize_va_space 2
  cis_done
}

cis_1_5_4() {
  cis_rec 1 "Ensure prelink is not installed" || return 0
  if pkg_installed prelink && ((CIS_LIVE)) && [[ -z $R ]]; then
    prelink -ua >&2 || cis_warn "prelink -ua failed"
  fi
  pkg_remove prelink
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
  cis_rec 1 "Ensure the SELinux mode is enforcing or permissive" || return 0
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
