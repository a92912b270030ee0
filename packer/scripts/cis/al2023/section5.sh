# shellcheck shell=bash
# CIS Amazon Linux 2023 Benchmark v1.0.0, section 5: logging and auditing (rsyslog, journald,
# log file permissions, auditd and its rules).

cis_5_1_1_1() {
  cis_rec 1 "Ensure rsyslog is installed" || return 0
  pkg_install rsyslog
  cis_done
}

# (Manual recommendation: applied because it is safe and useful.)
cis_5_1_1_2() {
  cis_rec 1 "Ensure rsyslog service is enabled" || return 0
  svc_enable rsyslog.service
  cis_done
}

cis_5_1_1_3() {
  cis_rec 1 "Ensure journald is configured to send logs to rsyslog" || return 0
  ini_set /etc/systemd/journald.conf Journal ForwardToSyslog yes
  cis_done
}

cis_5_1_1_4() {
  cis_rec 1 "Ensure rsyslog default file permissions are configured" || return 0
  # shellcheck disable=SC2016  # a literal rsyslog directive
  # a legacy directive applies to the actions after it: first line of rsyslog.conf
  CIS_CONF_AT=top conf_set /etc/rsyslog.conf '$FileCreateMode' '$FileCreateMode 0640'
  rsyslog_no_wider_filecreatemode
  cis_done
}

cis_5_1_1_6() {
  cis_rec 1 "Ensure rsyslog is configured to send logs to a remote log host" || return 0
  cis_skip_excepted "the remote log host depends on the environment the node runs in"
}

cis_5_1_1_7() {
  cis_rec 1 "Ensure rsyslog is not configured to receive logs from a remote client" || return 0
  rsyslog_no_remote_input
  cis_done
}

cis_5_1_2_1_4() {
  cis_rec 1 "Ensure journald is not configured to receive logs from a remote client" || return 0
  mask_services systemd-journal-remote.socket systemd-journal-remote.service
  cis_done
}

cis_5_1_2_2() {
  cis_rec 1 "Ensure journald service is enabled" || return 0
  journald_static
  cis_done
}

cis_5_1_2_3() {
  cis_rec 1 "Ensure journald is configured to compress large log files" || return 0
  ini_set /etc/systemd/journald.conf Journal Compress yes
  cis_done
}

cis_5_1_2_4() {
  cis_rec 1 "Ensure journald is configured to write logfiles to persistent disk" || return 0
  ini_set /etc/systemd/journald.conf Journal Storage persistent
  cis_done
}

cis_5_1_3() {
  cis_rec 1 "Ensure all logfiles have appropriate permissions and ownership" || return 0
  log_file_permissions
  cis_done
}

cis_5_2_1_1() {
  cis_rec 2 "Ensure auditd is installed" || return 0
  pkg_install audit
  cis_done
}

cis_5_2_1_2() {
  cis_rec 2 "Ensure auditing for processes that start prior to auditd is enabled" || return 0
  kernel_arg audit=1
  cis_done
}

cis_5_2_1_3() {
  cis_rec 2 "Ensure audit_backlog_limit is sufficient" || return 0
  kernel_arg audit_backlog_limit=8192
  cis_done
}

cis_5_2_1_4() {
  cis_rec 2 "Ensure auditd service is enabled" || return 0
  svc_enable auditd.service
  cis_done
}

cis_5_2_2_1() {
  cis_rec 2 "Ensure audit log storage size is configured" || return 0
  local v
  v=$(conf_get /etc/audit/auditd.conf max_log_file || true)
  if [[ ! $v =~ ^[0-9]+$ ]]; then conf_set /etc/audit/auditd.conf max_log_file "max_log_file = 32"; fi
  cis_done
}

cis_5_2_2_2() {
  cis_rec 2 "Ensure audit logs are not automatically deleted" || return 0
  conf_set /etc/audit/auditd.conf max_log_file_action "max_log_file_action = keep_logs"
  cis_done
}

cis_5_2_2_3() {
  cis_rec 2 "Ensure system is disabled when audit logs are full" || return 0
  auditd_full_action
  cis_done
}

cis_5_2_3_1() {
  cis_rec 2 "Ensure changes to system administration scope (sudoers) is collected" || return 0
  audit_rules 50-cis-scope <<'EOF'
-w /etc/sudoers -p wa -k scope
-w /etc/sudoers.d -p wa -k scope
EOF
  cis_done
}

cis_5_2_3_2() {
  cis_rec 2 "Ensure actions as another user are always logged" || return 0
  audit_rules 50-cis-user_emulation <<EOF
$(audit_syscall_rules execve "-C euid!=uid -F auid!=unset" user_emulation)
EOF
  cis_done
}

cis_5_2_3_3() {
  cis_rec 2 "Ensure events that modify the sudo log file are collected" || return 0
  local log
  log=$(sudo_logfile)
  audit_rules 50-cis-sudo_log_file <<EOF
-w $log -p wa -k sudo_log_file
EOF
  cis_done
}

cis_5_2_3_4() {
  cis_rec 2 "Ensure events that modify date and time information are collected" || return 0
  audit_rules 50-cis-time_change <<EOF
$(audit_syscall_rules adjtimex,settimeofday,clock_settime "" time-change)
-w /etc/localtime -p wa -k time-change
EOF
  cis_done
}

cis_5_2_3_5() {
  cis_rec 2 "Ensure events that modify the system's network environment are collected" || return 0
  audit_rules 50-cis-system_locale <<EOF
$(audit_syscall_rules sethostname,setdomainname "" system-locale)
-w /etc/issue -p wa -k system-locale
-w /etc/issue.net -p wa -k system-locale
-w /etc/hosts -p wa -k system-locale
-w /etc/hostname -p wa -k system-locale
-w /etc/sysconfig/network -p wa -k system-locale
-w /etc/sysconfig/network-scripts -p wa -k system-locale
EOF
  cis_done
}

cis_5_2_3_6() {
  cis_rec 2 "Ensure use of privileged commands are collected" || return 0
  audit_rules 50-cis-privileged <<EOF
$(privileged_rules unset)
EOF
  cis_done
}

cis_5_2_3_7() {
  cis_rec 2 "Ensure unsuccessful file access attempts are collected" || return 0
  local min
  min=$(uid_min)
  audit_rules 50-cis-access <<EOF
$(audit_syscall_rules creat,open,openat,truncate,ftruncate "-F exit=-EACCES -F auid>=$min -F auid!=unset" access)
$(audit_syscall_rules creat,open,openat,truncate,ftruncate "-F exit=-EPERM -F auid>=$min -F auid!=unset" access)
EOF
  cis_done
}

cis_5_2_3_8() {
  cis_rec 2 "Ensure events that modify user/group information are collected" || return 0
  audit_rules 50-cis-identity <<'EOF'
-w /etc/group -p wa -k identity
-w /etc/passwd -p wa -k identity
-w /etc/gshadow -p wa -k identity
-w /etc/shadow -p wa -k identity
-w /etc/security/opasswd -p wa -k identity
EOF
  cis_done
}

cis_5_2_3_9() {
  cis_rec 2 "Ensure discretionary access control permission modification events are collected" || return 0
  local min f
  min=$(uid_min)
  f="-F auid>=$min -F auid!=unset"
  audit_rules 50-cis-perm_mod <<EOF
$(audit_syscall_rules chmod,fchmod,fchmodat "$f" perm_mod)
$(audit_syscall_rules chown,fchown,lchown,fchownat "$f" perm_mod)
$(audit_syscall_rules setxattr,lsetxattr,fsetxattr,removexattr,lremovexattr,fremovexattr "$f" perm_mod)
EOF
  cis_done
}

cis_5_2_3_10() {
  cis_rec 2 "Ensure successful file system mounts are collected" || return 0
  local min
  min=$(uid_min)
  audit_rules 50-cis-mounts <<EOF
$(audit_syscall_rules mount "-F auid>=$min -F auid!=unset" mounts)
EOF
  cis_done
}

cis_5_2_3_11() {
  cis_rec 2 "Ensure session initiation information is collected" || return 0
  audit_rules 50-cis-session <<'EOF'
-w /var/run/utmp -p wa -k session
-w /var/log/wtmp -p wa -k session
-w /var/log/btmp -p wa -k session
EOF
  cis_done
}

cis_5_2_3_12() {
  cis_rec 2 "Ensure login and logout events are collected" || return 0
  audit_rules 50-cis-logins <<'EOF'
-w /var/log/lastlog -p wa -k logins
-w /var/run/faillock -p wa -k logins
EOF
  cis_done
}

cis_5_2_3_13() {
  cis_rec 2 "Ensure file deletion events by users are collected" || return 0
  local min
  min=$(uid_min)
  audit_rules 50-cis-delete <<EOF
$(audit_syscall_rules unlink,unlinkat,rename,renameat "-F auid>=$min -F auid!=unset" delete)
EOF
  cis_done
}

cis_5_2_3_14() {
  cis_rec 2 "Ensure events that modify the system's Mandatory Access Controls are collected" || return 0
  audit_rules 50-cis-MAC_policy <<'EOF'
-w /etc/selinux -p wa -k MAC-policy
-w /usr/share/selinux -p wa -k MAC-policy
EOF
  cis_done
}

cis_5_2_3_15() {
  cis_rec 2 "Ensure successful and unsuccessful attempts to use the chcon command are recorded" || return 0
  audit_program_rule 50-cis-chcon /usr/bin/chcon perm_chng
  cis_done
}

cis_5_2_3_16() {
  cis_rec 2 "Ensure successful and unsuccessful attempts to use the setfacl command are recorded" || return 0
  audit_program_rule 50-cis-setfacl /usr/bin/setfacl perm_chng
  cis_done
}

cis_5_2_3_17() {
  cis_rec 2 "Ensure successful and unsuccessful attempts to use the chacl command are recorded" || return 0
  audit_program_rule 50-cis-chacl /usr/bin/chacl perm_chng
  cis_done
}

cis_5_2_3_18() {
  cis_rec 2 "Ensure successful and unsuccessful attempts to use the usermod command are recorded" || return 0
  audit_program_rule 50-cis-usermod /usr/sbin/usermod usermod
  cis_done
}

cis_5_2_3_19() {
  cis_rec 2 "Ensure kernel module loading unloading and modification is collected" || return 0
  local min
  min=$(uid_min)
  audit_rules 50-cis-kernel_modules <<EOF
-a always,exit -F path=/usr/bin/kmod -F perm=x -F auid>=$min -F auid!=unset -k kernel_modules
-a always,exit -F arch=b64 -S $(audit_syscalls b64 init_module,finit_module,delete_module,create_module,query_module) -F auid>=$min -F auid!=unset -k kernel_modules
EOF
  cis_done
}

cis_5_2_3_20() {
  cis_rec 2 "Ensure the audit configuration is immutable" || return 0
  # the last rules file: locks the audit configuration until the next boot
  audit_rules 99-cis-finalize <<'EOF'
-e 2
EOF
  cis_done
}

cis_5_2_4_1() {
  cis_rec 2 "Ensure audit log files are mode 0640 or less permissive" || return 0
  audit_log_files 0640 - -
  cis_done
}

cis_5_2_4_2() {
  cis_rec 2 "Ensure only authorized users own audit log files" || return 0
  audit_log_files - root -
  cis_done
}

cis_5_2_4_3() {
  cis_rec 2 "Ensure only authorized groups are assigned ownership of audit log files" || return 0
  conf_set /etc/audit/auditd.conf log_group "log_group = root"
  audit_log_files - - root
  cis_done
}

cis_5_2_4_4() {
  cis_rec 2 "Ensure the audit log directory is 0750 or more restrictive" || return 0
  limit_mode "$(audit_log_dir)" 0750 - -
  cis_done
}

cis_5_2_4_5() {
  cis_rec 2 "Ensure audit configuration files are 640 or more restrictive" || return 0
  audit_config_files 0640 - -
  cis_done
}

cis_5_2_4_6() {
  cis_rec 2 "Ensure audit configuration files are owned by root" || return 0
  audit_config_files - root -
  cis_done
}

cis_5_2_4_7() {
  cis_rec 2 "Ensure audit configuration files belong to group root" || return 0
  audit_config_files - - root
  cis_done
}

cis_5_2_4_8() {
  cis_rec 2 "Ensure audit tools are 755 or more restrictive" || return 0
  audit_tools 0755 - -
  cis_done
}

cis_5_2_4_9() {
  cis_rec 2 "Ensure audit tools are owned by root" || return 0
  audit_tools - root -
  cis_done
}

cis_5_2_4_10() {
  cis_rec 2 "Ensure audit tools belong to group root" || return 0
  audit_tools - - root
  cis_done
}
