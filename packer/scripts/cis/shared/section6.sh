# shellcheck shell=bash
# The section 6 recommendations that CIS Amazon Linux 2023 v1.0.0 and CIS Amazon Linux 2
# v2.0.0 share: the same ID, the same title, the same level and the same remediation, so one
# function serves both. Sourced at the top of ../al2023/section6.sh and ../al2/section6.sh;
# a recommendation that differs in any of these stays in the platform's file.

cis_6_1_2() {
  cis_rec 1 "Ensure permissions on /etc/passwd are configured" || return 0
  limit_mode /etc/passwd 0644 root root required
  cis_done
}

cis_6_1_3() {
  cis_rec 1 "Ensure permissions on /etc/passwd- are configured" || return 0
  limit_mode /etc/passwd- 0644 root root
  cis_done
}

cis_6_2_1() {
  cis_rec 1 "Ensure accounts in /etc/passwd use shadowed passwords" || return 0
  shadowed_passwords
  cis_done
}

cis_6_2_2() {
  cis_rec 1 "Ensure /etc/shadow password fields are not empty" || return 0
  no_empty_passwords
  cis_done
}

cis_6_2_3() {
  cis_rec 1 "Ensure all groups in /etc/passwd exist in /etc/group" || return 0
  verify_groups_exist
  cis_done
}

cis_6_2_9() {
  cis_rec 1 "Ensure root is the only UID 0 account" || return 0
  verify_only_root_uid0
  cis_done
}
