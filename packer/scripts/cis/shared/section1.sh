# shellcheck shell=bash
# The section 1 recommendations that CIS Amazon Linux 2023 v1.0.0 and CIS Amazon Linux 2
# v2.0.0 share: the same ID, the same title, the same level and the same remediation, so one
# function serves both. Sourced at the top of ../al2023/section1.sh and ../al2/section1.sh;
# a recommendation that differs in any of these stays in the platform's file.

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

cis_1_6_1_5() {
  cis_rec 2 "Ensure the SELinux mode is enforcing" || return 0
  # CIS_SELINUX_MODE (Packer: selinux_mode): permissive by default, as the EKS-optimized AMI
  # ships (containerd runs with its SELinux support off); enforcing applies this recommendation.
  selinux_check_mode
  if [[ $CIS_SELINUX_MODE == permissive ]]; then
    cis_skip_excepted "selinux_mode is permissive, as the EKS-optimized AMI ships it (containerd's SELinux support is off); build with selinux_mode = enforcing to apply"
    return 0
  fi
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
