# shellcheck shell=bash
# CIS Amazon Linux 2 Benchmark v2.0.0, section 5: access, authentication and authorization
# (cron, sudo, SSH, PAM, accounts). sshd is configured but not restarted: the change applies to
# nodes booted from the AMI, and Packer's SSH session (through Session Manager) stays up.

cis_5_1_1() {
  cis_rec 1 "Ensure cron daemon is enabled and running" || return 0
  pkg_install cronie
  svc_enable crond.service
  cis_done
}

cis_5_1_2() {
  cis_rec 1 "Ensure permissions on /etc/crontab are configured" || return 0
  limit_mode /etc/crontab 0600 root root
  cis_done
}

cis_5_1_3() {
  cis_rec 1 "Ensure permissions on /etc/cron.hourly are configured" || return 0
  limit_mode /etc/cron.hourly 0700 root root
  cis_done
}

cis_5_1_4() {
  cis_rec 1 "Ensure permissions on /etc/cron.daily are configured" || return 0
  limit_mode /etc/cron.daily 0700 root root
  cis_done
}

cis_5_1_5() {
  cis_rec 1 "Ensure permissions on /etc/cron.weekly are configured" || return 0
  limit_mode /etc/cron.weekly 0700 root root
  cis_done
}

cis_5_1_6() {
  cis_rec 1 "Ensure permissions on /etc/cron.monthly are configured" || return 0
  limit_mode /etc/cron.monthly 0700 root root
  cis_done
}

cis_5_1_7() {
  cis_rec 1 "Ensure permissions on /etc/cron.d are configured" || return 0
  limit_mode /etc/cron.d 0700 root root
  cis_done
}

cis_5_1_8() {
  cis_rec 1 "Ensure cron is restricted to authorized users" || return 0
  allow_list cron
  cis_done
}

cis_5_1_9() {
  cis_rec 1 "Ensure at is restricted to authorized users" || return 0
  allow_list at
  cis_done
}

cis_5_2_1() {
  cis_rec 1 "Ensure sudo is installed" || return 0
  pkg_install sudo
  cis_done
}

cis_5_2_2() {
  cis_rec 1 "Ensure sudo commands use pty" || return 0
  sudo_default use_pty
  cis_done
}

cis_5_2_3() {
  cis_rec 1 "Ensure sudo log file exists" || return 0
  sudo_default 'logfile="/var/log/sudo.log"'
  cis_done
}

cis_5_3_1() {
  cis_rec 1 "Ensure permissions on /etc/ssh/sshd_config are configured" || return 0
  limit_mode /etc/ssh/sshd_config 0600 root root required
  cis_done
}

cis_5_3_2() {
  cis_rec 1 "Ensure permissions on SSH private host key files are configured" || return 0
  cis_skip_excepted "host keys are generated when an instance first boots"
}

cis_5_3_3() {
  cis_rec 1 "Ensure permissions on SSH public host key files are configured" || return 0
  # Host keys are generated at first boot (0644 root:root); the build instance's own are fixed too.
  limit_mode_glob 0644 root root '/etc/ssh/ssh_host_*_key.pub'
  cis_done
}

cis_5_3_4() {
  cis_rec 1 "Ensure SSH access is limited" || return 0
  cis_skip_excepted "which users and groups may use SSH is decided by each environment"
}

cis_5_3_5() {
  cis_rec 1 "Ensure SSH LogLevel is appropriate" || return 0
  sshd_set LogLevel VERBOSE
  cis_done
}

cis_5_3_6() {
  cis_rec 1 "Ensure SSH X11 forwarding is disabled" || return 0
  sshd_set X11Forwarding no
  cis_done
}

cis_5_3_7() {
  cis_rec 1 "Ensure SSH MaxAuthTries is set to 4 or less" || return 0
  sshd_set MaxAuthTries 4
  cis_done
}

cis_5_3_8() {
  cis_rec 1 "Ensure SSH IgnoreRhosts is enabled" || return 0
  sshd_set IgnoreRhosts yes
  cis_done
}

cis_5_3_9() {
  cis_rec 1 "Ensure SSH HostbasedAuthentication is disabled" || return 0
  sshd_set HostbasedAuthentication no
  cis_done
}

cis_5_3_10() {
  cis_rec 1 "Ensure SSH root login is disabled" || return 0
  sshd_set PermitRootLogin no
  cis_done
}

cis_5_3_11() {
  cis_rec 1 "Ensure SSH PermitEmptyPasswords is disabled" || return 0
  sshd_set PermitEmptyPasswords no
  cis_done
}

cis_5_3_12() {
  cis_rec 1 "Ensure SSH PermitUserEnvironment is disabled" || return 0
  sshd_set PermitUserEnvironment no
  cis_done
}

cis_5_3_13() {
  cis_rec 1 "Ensure only strong Ciphers are used" || return 0
  # an existing list of strong ciphers (the EKS AMI sets one) is kept
  sshd_algorithms Ciphers '(cbc|arcfour|3des|blowfish|cast128|rijndael)' \
    chacha20-poly1305@openssh.com,aes256-gcm@openssh.com,aes128-gcm@openssh.com,aes256-ctr,aes192-ctr,aes128-ctr
  cis_done
}

cis_5_3_14() {
  cis_rec 1 "Ensure only strong MAC algorithms are used" || return 0
  sshd_algorithms MACs '(md5|md4|ripemd160|sha1|umac-64|umac-128)' \
    hmac-sha2-512-etm@openssh.com,hmac-sha2-256-etm@openssh.com,hmac-sha2-512,hmac-sha2-256
  cis_done
}

cis_5_3_15() {
  cis_rec 1 "Ensure only strong Key Exchange algorithms are used" || return 0
  sshd_algorithms KexAlgorithms '(group1-sha1|group14-sha1|group-exchange-sha1)' \
    curve25519-sha256,curve25519-sha256@libssh.org,diffie-hellman-group14-sha256,diffie-hellman-group16-sha512,diffie-hellman-group18-sha512,ecdh-sha2-nistp521,ecdh-sha2-nistp384,ecdh-sha2-nistp256,diffie-hellman-group-exchange-sha256
  cis_done
}

cis_5_3_16() {
  cis_rec 1 "Ensure SSH Idle Timeout Interval is configured" || return 0
  # OpenSSH 7.4: ClientAliveCountMax 0 ends a session after ClientAliveInterval without input
  sshd_set ClientAliveInterval 300
  sshd_set ClientAliveCountMax 0
  cis_done
}

cis_5_3_17() {
  cis_rec 1 "Ensure SSH LoginGraceTime is set to one minute or less" || return 0
  sshd_set LoginGraceTime 60
  cis_done
}

cis_5_3_18() {
  cis_rec 1 "Ensure SSH warning banner is configured" || return 0
  sshd_set Banner /etc/issue.net
  cis_done
}

cis_5_3_19() {
  cis_rec 1 "Ensure SSH PAM is enabled" || return 0
  sshd_set UsePAM yes
  cis_done
}

cis_5_3_20() {
  cis_rec 2 "Ensure SSH AllowTcpForwarding is disabled" || return 0
  sshd_set AllowTcpForwarding no
  cis_done
}

cis_5_3_21() {
  cis_rec 1 "Ensure SSH MaxStartups is configured" || return 0
  sshd_set MaxStartups 10:30:60
  cis_done
}

cis_5_3_22() {
  cis_rec 1 "Ensure SSH MaxSessions is limited" || return 0
  sshd_set MaxSessions 10
  cis_done
}

cis_5_4_1() {
  cis_rec 1 "Ensure password creation requirements are configured" || return 0
  conf_set /etc/security/pwquality.conf minlen "minlen = 14"
  conf_set /etc/security/pwquality.conf minclass "minclass = 4"
  pam_pwquality_stack
  cis_done
}

cis_5_4_2() {
  cis_rec 1 "Ensure lockout for failed password attempts is configured" || return 0
  pam_faillock_stack
  cis_done
}

cis_5_4_3() {
  cis_rec 1 "Ensure password hashing algorithm is SHA-512" || return 0
  login_defs ENCRYPT_METHOD SHA512
  pam_sha512_stack
  cis_done
}

cis_5_4_4() {
  cis_rec 1 "Ensure password reuse is limited" || return 0
  pam_pwhistory_stack
  cis_done
}

cis_5_5_1_1() {
  cis_rec 1 "Ensure password expiration is 365 days or less" || return 0
  login_defs PASS_MAX_DAYS 365
  shadow_age 5 le 365
  cis_done
}

cis_5_5_1_2() {
  cis_rec 1 "Ensure minimum days between password changes is configured" || return 0
  login_defs PASS_MIN_DAYS 1
  shadow_age 4 ge 1
  cis_done
}

cis_5_5_1_3() {
  cis_rec 1 "Ensure password expiration warning days is 7 or more" || return 0
  login_defs PASS_WARN_AGE 7
  shadow_age 6 ge 7
  cis_done
}

cis_5_5_1_4() {
  cis_rec 1 "Ensure inactive password lock is 30 days or less" || return 0
  conf_set /etc/default/useradd INACTIVE INACTIVE=30
  shadow_age 7 le 30
  cis_done
}

cis_5_5_1_5() {
  cis_rec 1 "Ensure all users last password change date is in the past" || return 0
  shadow_no_future_change
  cis_done
}

cis_5_5_2() {
  cis_rec 1 "Ensure system accounts are secured" || return 0
  system_accounts
  cis_done
}

cis_5_5_3() {
  cis_rec 1 "Ensure default group for the root account is GID 0" || return 0
  set_db_field /etc/passwd 4 0 root
  cis_done
}

cis_5_5_4() {
  cis_rec 2 "Ensure default user shell timeout is configured" || return 0
  shell_timeout
  cis_done
}

cis_5_5_5() {
  cis_rec 1 "Ensure default user umask is configured" || return 0
  default_umask
  cis_done
}

cis_5_7() {
  cis_rec 1 "Ensure access to the su command is restricted" || return 0
  su_restrict
  cis_done
}
