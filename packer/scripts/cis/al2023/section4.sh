# shellcheck shell=bash
# CIS Amazon Linux 2023 Benchmark v1.0.0, section 4: access, authentication and authorization
# (cron, SSH, sudo, PAM, accounts). sshd is configured but not restarted: the change applies to
# nodes booted from the AMI, and Packer's SSH session (through Session Manager) stays up.

cis_4_1_1() {
  cis_rec 1 "Ensure cron daemon is installed and enabled" || return 0
  pkg_install cronie
  svc_enable crond.service
  cis_done
}

cis_4_1_2() {
  cis_rec 1 "Ensure permissions on /etc/crontab are configured" || return 0
  limit_mode /etc/crontab 0600 root root
  cis_done
}

cis_4_1_3() {
  cis_rec 1 "Ensure permissions on /etc/cron.hourly are configured" || return 0
  limit_mode /etc/cron.hourly 0700 root root
  cis_done
}

cis_4_1_4() {
  cis_rec 1 "Ensure permissions on /etc/cron.daily are configured" || return 0
  limit_mode /etc/cron.daily 0700 root root
  cis_done
}

cis_4_1_5() {
  cis_rec 1 "Ensure permissions on /etc/cron.weekly are configured" || return 0
  limit_mode /etc/cron.weekly 0700 root root
  cis_done
}

cis_4_1_6() {
  cis_rec 1 "Ensure permissions on /etc/cron.monthly are configured" || return 0
  limit_mode /etc/cron.monthly 0700 root root
  cis_done
}

cis_4_1_7() {
  cis_rec 1 "Ensure permissions on /etc/cron.d are configured" || return 0
  limit_mode /etc/cron.d 0700 root root
  cis_done
}

cis_4_1_8() {
  cis_rec 1 "Ensure cron is restricted to authorized users" || return 0
  allow_list cron
  cis_done
}

cis_4_1_9() {
  cis_rec 1 "Ensure at is restricted to authorized users" || return 0
  allow_list at
  cis_done
}

cis_4_2_1() {
  cis_rec 1 "Ensure permissions on /etc/ssh/sshd_config are configured" || return 0
  limit_mode /etc/ssh/sshd_config 0600 root root required
  limit_mode_glob 0600 root root '/etc/ssh/sshd_config.d/*.conf'
  cis_done
}

cis_4_2_2() {
  cis_rec 1 "Ensure permissions on SSH private host key files are configured" || return 0
  cis_skip_excepted "host keys are generated when an instance first boots"
}

cis_4_2_3() {
  cis_rec 1 "Ensure permissions on SSH public host key files are configured" || return 0
  # Host keys are generated at first boot (0644 root:root); the build instance's own are fixed too.
  limit_mode_glob 0644 root root '/etc/ssh/ssh_host_*_key.pub'
  cis_done
}

cis_4_2_4() {
  cis_rec 1 "Ensure SSH access is limited" || return 0
  cis_skip_excepted "which users and groups may use SSH is decided by each environment"
}

cis_4_2_5() {
  cis_rec 1 "Ensure SSH LogLevel is appropriate" || return 0
  sshd_set LogLevel VERBOSE
  cis_done
}

cis_4_2_6() {
  cis_rec 1 "Ensure SSH PAM is enabled" || return 0
  sshd_set UsePAM yes
  cis_done
}

cis_4_2_7() {
  cis_rec 1 "Ensure SSH root login is disabled" || return 0
  sshd_set PermitRootLogin no
  cis_done
}

cis_4_2_8() {
  cis_rec 1 "Ensure SSH HostbasedAuthentication is disabled" || return 0
  sshd_set HostbasedAuthentication no
  cis_done
}

cis_4_2_9() {
  cis_rec 1 "Ensure SSH PermitEmptyPasswords is disabled" || return 0
  sshd_set PermitEmptyPasswords no
  cis_done
}

cis_4_2_10() {
  cis_rec 1 "Ensure SSH PermitUserEnvironment is disabled" || return 0
  sshd_set PermitUserEnvironment no
  cis_done
}

cis_4_2_11() {
  cis_rec 1 "Ensure SSH IgnoreRhosts is enabled" || return 0
  sshd_set IgnoreRhosts yes
  cis_done
}

cis_4_2_12() {
  cis_rec 2 "Ensure SSH X11 forwarding is disabled" || return 0
  sshd_set X11Forwarding no
  cis_done
}

cis_4_2_13() {
  cis_rec 2 "Ensure SSH AllowTcpForwarding is disabled" || return 0
  sshd_set AllowTcpForwarding no
  cis_done
}

cis_4_2_14() {
  cis_rec 1 "Ensure system-wide crypto policy is not over-ridden" || return 0
  comment_out /etc/sysconfig/sshd '^[[:space:]]*CRYPTO_POLICY='
  cis_done
}

cis_4_2_15() {
  cis_rec 1 "Ensure SSH warning banner is configured" || return 0
  sshd_set Banner /etc/issue.net
  cis_done
}

cis_4_2_16() {
  cis_rec 1 "Ensure SSH MaxAuthTries is set to 4 or less" || return 0
  sshd_set MaxAuthTries 4
  cis_done
}

cis_4_2_17() {
  cis_rec 1 "Ensure SSH MaxStartups is configured" || return 0
  sshd_set MaxStartups 10:30:60
  cis_done
}

cis_4_2_18() {
  cis_rec 1 "Ensure SSH MaxSessions is set to 10 or less" || return 0
  sshd_set MaxSessions 10
  cis_done
}

cis_4_2_19() {
  cis_rec 1 "Ensure SSH LoginGraceTime is set to one minute or less" || return 0
  sshd_set LoginGraceTime 60
  cis_done
}

cis_4_2_20() {
  cis_rec 1 "Ensure SSH Idle Timeout Interval is configured" || return 0
  sshd_set ClientAliveInterval 15
  sshd_set ClientAliveCountMax 3
  cis_done
}

cis_4_3_1() {
  cis_rec 1 "Ensure sudo is installed" || return 0
  pkg_install sudo
  cis_done
}

cis_4_3_2() {
  cis_rec 1 "Ensure sudo commands use pty" || return 0
  sudo_default use_pty
  cis_done
}

cis_4_3_3() {
  cis_rec 1 "Ensure sudo log file exists" || return 0
  sudo_default 'logfile="/var/log/sudo.log"'
  cis_done
}

cis_4_3_4() {
  cis_rec 1 "Ensure re-authentication for privilege escalation is not disabled globally" || return 0
  sudo_no_global_noauth
  cis_done
}

cis_4_3_5() {
  cis_rec 1 "Ensure sudo authentication timeout is configured correctly" || return 0
  sudo_default timestamp_timeout=15
  cis_done
}

cis_4_3_6() {
  cis_rec 1 "Ensure access to the su command is restricted" || return 0
  su_restrict
  cis_done
}

cis_4_4_2() {
  cis_rec 1 "Ensure authselect includes with-faillock" || return 0
  pam_faillock_stack
  cis_done
}

cis_4_5_1() {
  cis_rec 1 "Ensure password creation requirements are configured" || return 0
  conf_set /etc/security/pwquality.conf minlen "minlen = 14"
  conf_set /etc/security/pwquality.conf minclass "minclass = 4"
  pam_pwquality_stack
  cis_done
}

cis_4_5_2() {
  cis_rec 1 "Ensure lockout for failed password attempts is configured" || return 0
  conf_set /etc/security/faillock.conf deny "deny = 5"
  conf_set /etc/security/faillock.conf unlock_time "unlock_time = 900"
  pam_faillock_stack
  cis_done
}

cis_4_5_3() {
  cis_rec 1 "Ensure password reuse is limited" || return 0
  pam_pwhistory_stack
  cis_done
}

cis_4_5_4() {
  cis_rec 1 "Ensure password hashing algorithm is SHA-512" || return 0
  login_defs ENCRYPT_METHOD SHA512
  if [[ -f $R/etc/libuser.conf ]]; then conf_set /etc/libuser.conf crypt_style "crypt_style = sha512"; fi
  pam_sha512_stack
  cis_done
}

cis_4_6_1_1() {
  cis_rec 1 "Ensure password expiration is 365 days or less" || return 0
  login_defs PASS_MAX_DAYS 365
  shadow_age 5 le 365
  cis_done
}

cis_4_6_1_2() {
  cis_rec 1 "Ensure minimum days between password changes is configured" || return 0
  login_defs PASS_MIN_DAYS 1
  shadow_age 4 ge 1
  cis_done
}

cis_4_6_1_3() {
  cis_rec 1 "Ensure password expiration warning days is 7 or more" || return 0
  login_defs PASS_WARN_AGE 7
  shadow_age 6 ge 7
  cis_done
}

cis_4_6_1_4() {
  cis_rec 1 "Ensure inactive password lock is 30 days or less" || return 0
  conf_set /etc/default/useradd INACTIVE INACTIVE=30
  shadow_age 7 le 30
  cis_done
}

cis_4_6_1_5() {
  cis_rec 1 "Ensure all users last password change date is in the past" || return 0
  shadow_no_future_change
  cis_done
}

cis_4_6_2() {
  cis_rec 1 "Ensure system accounts are secured" || return 0
  system_accounts
  cis_done
}

cis_4_6_3() {
  cis_rec 1 "Ensure default user shell timeout is 900 seconds or less" || return 0
  shell_timeout
  cis_done
}

cis_4_6_4() {
  cis_rec 1 "Ensure default group for the root account is GID 0" || return 0
  set_db_field /etc/passwd 4 0 root
  cis_done
}

cis_4_6_5() {
  cis_rec 1 "Ensure default user umask is 027 or more restrictive" || return 0
  default_umask
  cis_done
}

cis_4_6_6() {
  cis_rec 1 "Ensure root password is set" || return 0
  root_password_set
  cis_done
}
