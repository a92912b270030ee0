# shellcheck shell=bash
# CIS Amazon Linux 2 Benchmark v2.0.0, section 1: initial setup (file systems, software
# updates, integrity checking, boot settings, process hardening, SELinux, banners).
# Sourced by cis-harden.sh after lib.sh; one function per recommendation.

# The recommendations of this section that both benchmarks share (same ID, title, level and
# remediation) are defined once, in ../shared/section1.sh; this file never redefines them.
# shellcheck source=../shared/section1.sh source-path=SCRIPTDIR
. "$(dirname "${BASH_SOURCE[0]}")/../shared/section1.sh"

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

cis_1_6_1_4() {
  cis_rec 1 "Ensure the SELinux mode is enforcing or permissive" || return 0
  # at least permissive; enforcing when the build chose it (selinux_mode), at level 1 as well
  selinux_check_mode
  selinux_mode_at_least "$CIS_SELINUX_MODE"
  cis_done
}
