# shellcheck shell=bash
# The section 3 recommendations that CIS Amazon Linux 2023 v1.0.0 and CIS Amazon Linux 2
# v2.0.0 share: the same ID, the same title, the same level and the same remediation, so one
# function serves both. Sourced at the top of ../al2023/section3.sh and ../al2/section3.sh;
# a recommendation that differs in any of these stays in the platform's file.

cis_3_2_1() {
  cis_rec 1 "Ensure IP forwarding is disabled" || return 0
  cis_skip_excepted "Kubernetes networking (kube-proxy, the VPC CNI) needs IP forwarding"
}

cis_3_2_2() {
  cis_rec 1 "Ensure packet redirect sending is disabled" || return 0
  sysctl_set net.ipv4.conf.all.send_redirects 0
  sysctl_set net.ipv4.conf.default.send_redirects 0
  cis_done
}

cis_3_3_1() {
  cis_rec 1 "Ensure source routed packets are not accepted" || return 0
  sysctl_set net.ipv4.conf.all.accept_source_route 0
  sysctl_set net.ipv4.conf.default.accept_source_route 0
  sysctl_set net.ipv6.conf.all.accept_source_route 0
  sysctl_set net.ipv6.conf.default.accept_source_route 0
  cis_done
}

cis_3_3_2() {
  cis_rec 1 "Ensure ICMP redirects are not accepted" || return 0
  sysctl_set net.ipv4.conf.all.accept_redirects 0
  sysctl_set net.ipv4.conf.default.accept_redirects 0
  sysctl_set net.ipv6.conf.all.accept_redirects 0
  sysctl_set net.ipv6.conf.default.accept_redirects 0
  cis_done
}

cis_3_3_3() {
  cis_rec 1 "Ensure secure ICMP redirects are not accepted" || return 0
  sysctl_set net.ipv4.conf.all.secure_redirects 0
  sysctl_set net.ipv4.conf.default.secure_redirects 0
  cis_done
}

cis_3_3_4() {
  cis_rec 1 "Ensure suspicious packets are logged" || return 0
  sysctl_set net.ipv4.conf.all.log_martians 1
  sysctl_set net.ipv4.conf.default.log_martians 1
  cis_done
}

cis_3_3_5() {
  cis_rec 1 "Ensure broadcast ICMP requests are ignored" || return 0
  sysctl_set net.ipv4.icmp_echo_ignore_broadcasts 1
  cis_done
}

cis_3_3_6() {
  cis_rec 1 "Ensure bogus ICMP responses are ignored" || return 0
  sysctl_set net.ipv4.icmp_ignore_bogus_error_responses 1
  cis_done
}

cis_3_3_7() {
  cis_rec 1 "Ensure Reverse Path Filtering is enabled" || return 0
  # The VPC CNI sets loose mode (2) on the primary interface itself; the kernel uses the
  # higher of "all" and the interface value, so strict mode here does not break pod traffic.
  sysctl_set net.ipv4.conf.all.rp_filter 1
  sysctl_set net.ipv4.conf.default.rp_filter 1
  cis_done
}

cis_3_3_8() {
  cis_rec 1 "Ensure TCP SYN Cookies is enabled" || return 0
  sysctl_set net.ipv4.tcp_syncookies 1
  cis_done
}

cis_3_3_9() {
  cis_rec 1 "Ensure IPv6 router advertisements are not accepted" || return 0
  # In IPv6 clusters the VPC CNI sets accept_ra on the node's interface itself; on Amazon
  # Linux 2023 systemd-networkd handles router advertisements itself.
  sysctl_set net.ipv6.conf.all.accept_ra 0
  sysctl_set net.ipv6.conf.default.accept_ra 0
  cis_done
}
