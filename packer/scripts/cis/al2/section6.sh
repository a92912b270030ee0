# shellcheck shell=bash
# CIS Amazon Linux 2 Benchmark v2.0.0, section 6: system maintenance (system file permissions,
# world-writable and unowned files, user and group settings). The file-system searches never
# descend into containerd and kubelet paths.

# The recommendations of this section that both benchmarks share (same ID, title, level and
# remediation) are defined once, in ../shared/section6.sh; this file never redefines them.
# shellcheck source=../shared/section6.sh source-path=SCRIPTDIR
. "$(dirname "${BASH_SOURCE[0]}")/../shared/section6.sh"

cis_6_1_4() {
  cis_rec 1 "Ensure permissions on /etc/shadow are configured" || return 0
  limit_mode /etc/shadow 0000 root root required
  cis_done
}

cis_6_1_5() {
  cis_rec 1 "Ensure permissions on /etc/shadow- are configured" || return 0
  limit_mode /etc/shadow- 0000 root root
  cis_done
}

cis_6_1_6() {
  cis_rec 1 "Ensure permissions on /etc/gshadow- are configured" || return 0
  limit_mode /etc/gshadow- 0000 root root
  cis_done
}

cis_6_1_7() {
  cis_rec 1 "Ensure permissions on /etc/gshadow are configured" || return 0
  limit_mode /etc/gshadow 0000 root root
  cis_done
}

cis_6_1_8() {
  cis_rec 1 "Ensure permissions on /etc/group are configured" || return 0
  limit_mode /etc/group 0644 root root required
  cis_done
}

cis_6_1_9() {
  cis_rec 1 "Ensure permissions on /etc/group- are configured" || return 0
  limit_mode /etc/group- 0644 root root
  cis_done
}

cis_6_1_10() {
  cis_rec 1 "Ensure no world writable files exist" || return 0
  # Approved exception for the containerd and kubelet paths (never searched); fixed elsewhere.
  world_writable_files
  cis_done
}

cis_6_1_11() {
  cis_rec 1 "Ensure no unowned files or directories exist" || return 0
  # Approved exception for the containerd and kubelet paths (never searched); fixed elsewhere.
  unowned_files
  cis_done
}

cis_6_1_12() {
  cis_rec 1 "Ensure no ungrouped files or directories exist" || return 0
  # Approved exception for the containerd and kubelet paths (never searched); fixed elsewhere.
  ungrouped_files
  cis_done
}

cis_6_2_4() {
  cis_rec 1 "Ensure shadow group is empty" || return 0
  shadow_group_empty
  cis_done
}

cis_6_2_5() {
  cis_rec 1 "Ensure no duplicate user names exist" || return 0
  verify_unique /etc/passwd 1 "user names"
  cis_done
}

cis_6_2_6() {
  cis_rec 1 "Ensure no duplicate group names exist" || return 0
  verify_unique /etc/group 1 "group names"
  cis_done
}

cis_6_2_7() {
  cis_rec 1 "Ensure no duplicate UIDs exist" || return 0
  verify_unique /etc/passwd 3 UIDs
  cis_done
}

cis_6_2_8() {
  cis_rec 1 "Ensure no duplicate GIDs exist" || return 0
  verify_unique /etc/group 3 GIDs
  cis_done
}

cis_6_2_10() {
  cis_rec 1 "Ensure root PATH Integrity" || return 0
  root_path
  cis_done
}

cis_6_2_11() {
  cis_rec 1 "Ensure all users' home directories exist" || return 0
  home_dirs
  cis_done
}

cis_6_2_12() {
  cis_rec 1 "Ensure users own their home directories" || return 0
  home_dirs
  cis_done
}

cis_6_2_13() {
  cis_rec 1 "Ensure users' home directories permissions are 750 or more restrictive" || return 0
  home_dirs
  cis_done
}

cis_6_2_14() {
  cis_rec 1 "Ensure users' dot files are not group or world writable" || return 0
  dot_files
  cis_done
}

cis_6_2_15() {
  cis_rec 1 "Ensure no users have .forward files" || return 0
  dot_files forward
  cis_done
}

cis_6_2_16() {
  cis_rec 1 "Ensure no users have .netrc files" || return 0
  dot_files netrc
  cis_done
}

cis_6_2_17() {
  cis_rec 1 "Ensure no users have .rhosts files" || return 0
  dot_files rhosts
  cis_done
}
