# shellcheck shell=bash
# CIS Amazon Linux 2023 Benchmark v1.0.0, section 2: services (time synchronisation, special
# purpose services, service clients). Packages that EKS needs stay installed (nfs-utils for
# NFS/EFS volumes): CIS allows masking their server units instead.

cis_2_1_1() {
  cis_rec 1 "Ensure time synchronization is in use" || return 0
  pkg_install chrony
  svc_enable chronyd.service
  cis_done
}

cis_2_1_2() {
  cis_rec 1 "Ensure chrony is configured" || return 0
  # Approved exception (scanners read only chrony.conf): the configuration is a drop-in.
  chrony_dropin
  cis_done
}

cis_2_2_1() {
  cis_rec 2 "Ensure xorg-x11-server-common is not installed" || return 0
  pkg_remove xorg-x11-server-common
  cis_done
}

cis_2_2_2() {
  cis_rec 1 "Ensure avahi is not installed" || return 0
  pkg_remove avahi
  cis_done
}

cis_2_2_3() {
  cis_rec 1 "Ensure a print server is not installed" || return 0
  pkg_remove cups
  cis_done
}

cis_2_2_4() {
  cis_rec 1 "Ensure a dhcp server is not installed" || return 0
  pkg_remove dhcp-server
  cis_done
}

cis_2_2_5() {
  cis_rec 1 "Ensure a dns server is not installed" || return 0
  pkg_remove bind
  cis_done
}

cis_2_2_6() {
  cis_rec 1 "Ensure an ftp server is not installed" || return 0
  pkg_remove vsftpd
  cis_done
}

cis_2_2_7() {
  cis_rec 1 "Ensure a tftp server is not installed" || return 0
  pkg_remove tftp-server
  cis_done
}

cis_2_2_8() {
  cis_rec 1 "Ensure a web server is not installed" || return 0
  pkg_remove httpd nginx
  cis_done
}

cis_2_2_9() {
  cis_rec 1 "Ensure IMAP and POP3 server is not installed" || return 0
  pkg_remove dovecot cyrus-imapd
  cis_done
}

cis_2_2_10() {
  cis_rec 1 "Ensure Samba is not installed" || return 0
  pkg_remove samba
  cis_done
}

cis_2_2_11() {
  cis_rec 1 "Ensure HTTP Proxy Server is not installed" || return 0
  pkg_remove squid
  cis_done
}

cis_2_2_12() {
  cis_rec 1 "Ensure net-snmp is not installed or the snmpd service is not enabled" || return 0
  pkg_remove net-snmp
  cis_done
}

cis_2_2_13() {
  cis_rec 1 "Ensure telnet-server is not installed" || return 0
  pkg_remove telnet-server
  cis_done
}

cis_2_2_14() {
  cis_rec 1 "Ensure dnsmasq is not installed" || return 0
  pkg_remove dnsmasq
  cis_done
}

cis_2_2_15() {
  cis_rec 1 "Ensure mail transfer agent is configured for local-only mode" || return 0
  mta_local_only
  cis_done
}

cis_2_2_16() {
  cis_rec 1 "Ensure nfs-utils is not installed or the nfs-server service is masked" || return 0
  # nfs-utils stays: the kubelet mounts NFS and EFS volumes with it
  mask_services nfs-server.service
  cis_done
}

cis_2_2_17() {
  cis_rec 1 "Ensure rpcbind is not installed or the rpcbind services are masked" || return 0
  # rpcbind stays installed (a dependency of nfs-utils); NFSv4 mounts do not need it running
  mask_services rpcbind.service rpcbind.socket
  cis_done
}

cis_2_2_18() {
  cis_rec 1 "Ensure rsync-daemon is not installed or the rsyncd service is masked" || return 0
  pkg_remove rsync-daemon
  mask_services rsyncd.service rsyncd.socket
  cis_done
}

cis_2_3_1() {
  cis_rec 1 "Ensure telnet client is not installed" || return 0
  pkg_remove telnet
  cis_done
}

cis_2_3_2() {
  cis_rec 1 "Ensure LDAP client is not installed" || return 0
  pkg_remove openldap-clients
  cis_done
}

cis_2_3_3() {
  cis_rec 1 "Ensure FTP client is not installed" || return 0
  pkg_remove ftp
  cis_done
}
