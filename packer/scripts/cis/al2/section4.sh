# shellcheck shell=bash
# CIS Amazon Linux 2 Benchmark v2.0.0, section 4: logging and auditing (auditd and its rules,
# rsyslog, journald).

cis_4_1_1_1() {
  cis_rec 2 "Ensure auditd is installed" || return 0
  pkg_install audit audit-libs
  cis_done
}

cis_4_1_1_2() {
  cis_rec 2 "Ensure auditd service is enabled and running" || return 0
  svc_enable auditd.service
  cis_done
}

cis_4_1_1_3() {
  cis_rec 2 "Ensure auditing for processes that start prior to auditd is enabled" || return 0
  kernel_arg audit=1
  cis_done
}

cis_4_1_2_1() {
  cis_rec 2 "Ensure audit log storage size is configured" || return 0
  local v
  v=$(conf_get /etc/audit/auditd.conf max_log_file || true)
  if [[ ! $v =~ ^[0-9]+$ ]]; then conf_set /etc/audit/auditd.conf max_log_file "max_log_file = 32"; fi
  cis_done
}

cis_4_1_2_2() {
  cis_rec 2 "Ensure audit logs are not automatically deleted" || return 0
  conf_set /etc/audit/auditd.conf max_log_file_action "max_log_file_action = keep_logs"
  cis_done
}

cis_4_1_2_3() {
  cis_rec 2 "Ensure system is disabled when audit logs are full" || return 0
  auditd_full_action
  cis_done
}

cis_4_1_2_4() {
  cis_rec 2 "Ensure audit_backlog_limit is sufficient" || return 0
  kernel_arg audit_backlog_limit=8192
  cis_done
}

cis_4_1_3() {
  cis_rec 2 "Ensure events that modify date and time information are collected" || return 0
  audit_rules 50-cis-time_change <<EOF
$(audit_syscall_rules adjtimex,settimeofday,stime "" time-change)
$(audit_syscall_rules clock_settime "" time-change)
-w /etc/localtime -p wa -k time-change
EOF
  cis_done
}

cis_4_1_4() {
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

cis_4_1_5() {
  cis_rec 2 "Ensure events that modify the system's network environment are collected" || return 0
  audit_rules 50-cis-system_locale <<EOF
$(audit_syscall_rules sethostname,setdomainname "" system-locale)
-w /etc/issue -p wa -k system-locale
-w /etc/issue.net -p wa -k system-locale
-w /etc/hosts -p wa -k system-locale
-w /etc/sysconfig/network -p wa -k system-locale
EOF
  cis_done
}

cis_4_1_6() {
  cis_rec 2 "Ensure events that modify the system's Mandatory Access Controls are collected" || return 0
  audit_rules 50-cis-MAC_policy <<'EOF'
-w /etc/selinux/ -p wa -k MAC-policy
-w /usr/share/selinux/ -p wa -k MAC-policy
EOF
  cis_done
}

cis_4_1_7() {
  cis_rec 2 "Ensure login and logout events are collected" || return 0
  audit_rules 50-cis-logins <<'EOF'
-w /var/log/lastlog -p wa -k logins
-w /var/run/faillock/ -p wa -k logins
EOF
  cis_done
}

cis_4_1_8() {
  cis_rec 2 "Ensure session initiation information is collected" || return 0
  audit_rules 50-cis-session <<'EOF'
-w /var/run/utmp -p wa -k session
-w /var/log/wtmp -p wa -k logins
-w /var/log/btmp -p wa -k logins
EOF
  cis_done
}

cis_4_1_9() {
  cis_rec 2 "Ensure discretionary access control permission modification events are collected" || return 0
  local min
  min=$(uid_min)
  audit_rules 50-cis-perm_mod <<EOF
$(audit_syscall_rules chmod,fchmod,fchmodat "-F auid>=$min -F auid!=4294967295" perm_mod)
$(audit_syscall_rules chown,fchown,fchownat,lchown "-F auid>=$min -F auid!=4294967295" perm_mod)
$(audit_syscall_rules setxattr,lsetxattr,fsetxattr,removexattr,lremovexattr,fremovexattr "-F auid>=$min -F auid!=4294967295" perm_mod)
EOF
  cis_done
}

cis_4_1_10() {
  cis_rec 2 "Ensure unsuccessful unauthorized file access attempts are collected" || return 0
  local min
  min=$(uid_min)
  audit_rules 50-cis-access <<EOF
$(audit_syscall_rules creat,open,openat,truncate,ftruncate "-F exit=-EACCES -F auid>=$min -F auid!=4294967295" access)
$(audit_syscall_rules creat,open,openat,truncate,ftruncate "-F exit=-EPERM -F auid>=$min -F auid!=4294967295" access)
EOF
  cis_done
}

cis_4_1_11() {
  cis_rec 2 "Ensure use of privileged commands is collected" || return 0
  audit_rules 50-cis-privileged <<EOF
$(privileged_rules 4294967295)
EOF
  cis_done
}

cis_4_1_12() {
  cis_rec 2 "Ensure successful file system mounts are collected" || return 0
  local min
  min=$(uid_min)
  audit_rules 50-cis-mounts <<EOF
$(audit_syscall_rules mount "-F auid>=$min -F auid!=4294967295" mounts)
EOF
  cis_done
}

cis_4_1_13() {
  cis_rec 2 "Ensure file deletion events by users are collected" || return 0
  local min
  min=$(uid_min)
  audit_rules 50-cis-delete <<EOF
$(audit_syscall_rules unlink,unlinkat,rename,renameat "-F auid>=$min -F auid!=4294967295" delete)
EOF
  cis_done
}

cis_4_1_14() {
  cis_rec 2 "Ensure changes to system administration scope (sudoers) is collected" || return 0
  audit_rules 50-cis-scope <<'EOF'
-w /etc/sudoers -p wa -k scope
-w /etc/sudoers.d/ -p wa -k scope
EOF
  cis_done
}

cis_4_1_15() {
  cis_rec 2 "Ensure system administrator command executions (sudo) are collected" || return 0
  local min
  min=$(uid_min)
  audit_rules 50-cis-actions <<EOF
$(audit_syscall_rules execve "-C euid!=uid -F euid=0 -F auid>=$min -F auid!=4294967295" actions)
EOF
  cis_done
}

cis_4_1_16() {
  cis_rec 2 "Ensure kernel module loading and unloading is collected" || return 0
  audit_rules 50-cis-modules <<EOF
-w /sbin/insmod -p x -k modules
-w /sbin/rmmod -p x -k modules
-w /sbin/modprobe -p x -k modules
-a always,exit -F arch=b64 -S $(audit_syscalls b64 init_module,delete_module) -k modules
EOF
  cis_done
}

cis_4_1_17() {
  cis_rec 2 "Ensure the audit configuration is immutable" || return 0
  # the last rules file: locks the audit configuration until the next boot
  audit_rules 99-cis-finalize <<'EOF'
-e 2
EOF
  cis_done
}

cis_4_2_1_1() {
  cis_rec 1 "Ensure rsyslog is installed" || return 0
  pkg_install rsyslog
  cis_done
}

cis_4_2_1_2() {
  cis_rec 1 "Ensure rsyslog Service is enabled and running" || return 0
  svc_enable rsyslog.service
  cis_done
}

cis_4_2_1_3() {
  cis_rec 1 "Ensure rsyslog default file permissions configured" || return 0
  # shellcheck disable=SC2016  # a literal rsyslog directive
  # a legacy directive applies to the actions after it: first line of rsyslog.conf
  CIS_CONF_AT=top conf_set /etc/rsyslog.conf '$FileCreateMode' '$FileCreateMode 0640'
  rsyslog_no_wider_filecreatemode
  cis_done
}

cis_4_2_1_5() {
  cis_rec 1 "Ensure rsyslog is configured to send logs to a remote log host" || return 0
  cis_skip_excepted "the remote log host depends on the environment the node runs in"
}

cis_4_2_2_1() {
  cis_rec 1 "Ensure journald is configured to send logs to rsyslog" || return 0
  ini_set /etc/systemd/journald.conf Journal ForwardToSyslog yes
  cis_done
}

cis_4_2_2_2() {
  cis_rec 1 "Ensure journald is configured to compress large log files" || return 0
  ini_set /etc/systemd/journald.conf Journal Compress yes
  cis_done
}

cis_4_2_2_3() {
  cis_rec 1 "Ensure journald is configured to write logfiles to persistent disk" || return 0
  ini_set /etc/systemd/journald.conf Journal Storage persistent
  cis_done
}

# (Manual recommendation: applied because it is safe and useful.)
cis_4_2_4() {
  cis_rec 1 "Ensure permissions on all logfiles are configured" || return 0
  log_file_permissions
  cis_done
}
