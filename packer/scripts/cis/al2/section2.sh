# shellcheck shell=bash
# CIS Amazon Linux 2 Benchmark v2.0.0, section 2: services (time synchronisation, special
# purpose services, service clients). Packages that EKS needs stay installed (nfs-utils for
# NFS/EFS volumes): CIS allows masking their server units instead.

# (Manual recommendation: applied because it is safe and useful.)
cis_2_1_1_1() {
  cis_rec 1 "Ensure time synchronization is in use" || return 0
  pkg_install chrony
  svc_enable chronyd.service
  cis_done
}

cis_2_1_1_2() {
  cis_rec 1 "Ensure chrony is configured" || return 0
  # Approved exception (scanners read only chrony.conf): the configuration is a drop-in.
  chrony_dropin
  cis_done
}

cis_2_1_1_3() {
  cis_rec 1 "Ensure ntp is configured" || return 0
  cis_skip "not applicable: chrony is the time synchronisation daemon (2.1.1.1); the ntp recommendations apply only where ntp is used"
}

cis_2_1_2() {
  cis_rec 1 "Ensure X11 Server components are not installed" || return 0
  pkg_remove xorg-x11-server-common xorg-x11-server-Xorg
  cis_done
}

cis_2_1_3() {
  cis_rec 1 "Ensure Avahi Server is not installed" || return 0
  pkg_remove avahi-autoipd avahi
  cis_done
}

cis_2_1_4() {
  cis_rec 1 "Ensure CUPS is not installed" || return 0
  pkg_remove cups
  cis_done
}

cis_2_1_5() {
  cis_rec 1 "Ensure DHCP Server is not installed" || return 0
  pkg_remove dhcp
  cis_done
}

cis_2_1_6() {
  cis_rec 1 "Ensure LDAP server is not installed" || return 0
  pkg_remove openldap-servers
  cis_done
}

cis_2_1_7() {
  cis_rec 1 "Ensure DNS Server is not installed" || return 0
  pkg_remove bind
  cis_done
}

cis_2_1_8() {
  cis_rec 1 "Ensure FTP Server is not installed" || return 0
  pkg_remove vsftpd
  cis_done
}

cis_2_1_9() {
  cis_rec 1 "Ensure HTTP server is not installed" || return 0
  pkg_remove httpd
  cis_done
}

cis_2_1_10() {
  cis_rec 1 "Ensure IMAP and POP3 server is not installed" || return 0
  pkg_remove dovecot
  cis_done
}

cis_2_1_11() {
  cis_rec 1 "Ensure Samba is not installed" || return 0
  pkg_remove samba
  cis_done
}

cis_2_1_12() {
  cis_rec 1 "Ensure HTTP Proxy Server is not installed" || return 0
  pkg_remove squid
  cis_done
}

cis_2_1_13() {
  cis_rec 1 "Ensure net-snmp is not installed" || return 0
  pkg_remove net-snmp
  cis_done
}

cis_2_1_14() {
  cis_rec 1 "Ensure NIS server is not installed" || return 0
  pkg_remove ypserv
  cis_done
}

cis_2_1_15() {
  cis_rec 1 "Ensure telnet-server is not installed" || return 0
  pkg_remove telnet-server
  cis_done
}

cis_2_1_16() {
  cis_rec 1 "Ensure mail transfer agent is configured for local-only mode" || return 0
  mta_local_only
  cis_done
}

cis_2_1_17() {
  cis_rec 1 "Ensure nfs-utils is not installed or the nfs-server service is masked" || return 0
  # nfs-utils stays: the kubelet mounts NFS and EFS volumes with it
  mask_services nfs-server.service
  cis_done
}

cis_2_1_18() {
  cis_rec 1 "Ensure rpcbind is not installed or the rpcbind services are masked" || return 0
  # rpcbind stays installed (a dependency of nfs-utils); NFSv4 mounts do not need it running
  mask_services rpcbind.service rpcbind.socket
  cis_done
}

cis_2_1_19() {
  cis_rec 1 "Ensure rsync is not installed or the rsyncd service is masked" || return 0
  mask_services rsyncd.service rsyncd.socket
  cis_done
}

cis_2_2_1() {
  cis_rec 1 "Ensure NIS Client is not installed" || return 0
  pkg_remove ypbind
  cis_done
}

cis_2_2_2() {
  cis_rec 1 "Ensure rsh client is not installed" || return 0
  pkg_remove rsh
  cis_done
}

cis_2_2_3() {
  cis_rec 1 "Ensure talk client is not installed" || return 0
  pkg_remove talk
  cis_done
}

cis_2_2_4() {
  cis_rec 1 "Ensure telnet client is not installed" || return 0
  pkg_remove telnet
  cis_done
}

cis_2_2_5() {
  cis_rec 1 "Ensure LDAP client is not installed" || return 0
  pkg_remove openldap-clients
  cis_done
}
