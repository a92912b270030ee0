# shellcheck shell=bash
# CIS Amazon Linux 2023 Benchmark v1.0.0, section 3: network configuration.
# EKS-aware: IP forwarding stays on (kube-proxy, the VPC CNI; 3.2.1 is an approved exception),
# and the nftables ruleset has no default-deny policy (3.4.2.7 is an approved exception), so the
# kubelet (10250), the VPC CNI, kube-proxy and EKS Pod Identity (169.254.170.23) keep working.

cis_3_1_2() {
  cis_rec 2 "Ensure DCCP is disabled" || return 0
  module_disable dccp
  cis_done
}

cis_3_1_3() {
  cis_rec 2 "Ensure SCTP is disabled" || return 0
  module_disable sctp
  cis_done
}

cis_3_1_4() {
  cis_rec 2 "Ensure RDS is disabled" || return 0
  module_disable rds
  cis_done
}

cis_3_1_5() {
  cis_rec 2 "Ensure TIPC is disabled" || return 0
  module_disable tipc
  cis_done
}

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
  # systemd-networkd handles router advertisements itself on Amazon Linux 2023
  sysctl_set net.ipv6.conf.all.accept_ra 0
  sysctl_set net.ipv6.conf.default.accept_ra 0
  cis_done
}

cis_3_4_1_1() {
  cis_rec 2 "Ensure nftables is installed" || return 0
  pkg_install nftables
  cis_done
}

cis_3_4_1_2() {
  cis_rec 2 "Ensure a single firewall configuration utility is in use" || return 0
  # nftables is the one firewall utility: firewalld and iptables-services are not used
  pkg_remove firewalld
  mask_services iptables.service ip6tables.service
  nft_ruleset
  svc_enable nftables.service
  cis_done
}

cis_3_4_2_1() {
  cis_rec 2 "Ensure firewalld default zone is set" || return 0
  cis_skip "not applicable: nftables is the firewall utility (3.4.1.2); firewalld is not used"
}

cis_3_4_2_2() {
  cis_rec 2 "Ensure at least one nftables table exists" || return 0
  nft_ruleset
  cis_done
}

cis_3_4_2_3() {
  cis_rec 2 "Ensure nftables base chains exist" || return 0
  nft_ruleset
  cis_done
}

cis_3_4_2_4() {
  cis_rec 2 "Ensure host based firewall loopback traffic is configured" || return 0
  nft_ruleset
  cis_done
}

cis_3_4_2_7() {
  cis_rec 2 "Ensure nftables default deny firewall policy" || return 0
  cis_skip_excepted "a default-deny policy would block the kubelet (10250), the VPC CNI, kube-proxy and EKS Pod Identity; the policies stay accept"
}
