# shellcheck shell=bash
# CIS Amazon Linux 2 Benchmark v2.0.0, section 3: network configuration.
# EKS-aware: IP forwarding stays on (3.2.1 is an approved exception). iptables is the one
# firewall utility (3.5.3; CIS configures exactly one of firewalld, nftables and iptables, so
# 3.5.1 and 3.5.2 do not apply). IPv4 policies stay ACCEPT (kube-proxy and the VPC CNI own the
# IPv4 rules: 3.5.3.2.3 and 3.5.3.2.4 are approved exceptions); IPv6 is default-deny with
# explicit allow rules for the kubelet, EKS Pod Identity and pod traffic.

# The recommendations of this section that both benchmarks share (same ID, title, level and
# remediation) are defined once, in ../shared/section3.sh; this file never redefines them.
# shellcheck source=../shared/section3.sh source-path=SCRIPTDIR
. "$(dirname "${BASH_SOURCE[0]}")/../shared/section3.sh"

cis_3_1_2() {
  cis_rec 1 "Ensure wireless interfaces are disabled" || return 0
  wireless_off
  cis_done
}

cis_3_4_1() {
  cis_rec 2 "Ensure DCCP is disabled" || return 0
  module_disable dccp
  cis_done
}

cis_3_4_2() {
  cis_rec 2 "Ensure SCTP is disabled" || return 0
  module_disable sctp
  cis_done
}

cis_3_5_1_1() {
  cis_rec 1 "Ensure firewalld is installed" || return 0
  cis_skip "not applicable: iptables is the firewall utility (3.5.3); CIS configures only one of firewalld, nftables and iptables"
}

cis_3_5_1_2() {
  cis_rec 1 "Ensure iptables-services not installed with firewalld" || return 0
  cis_skip "not applicable: iptables is the firewall utility (3.5.3); CIS configures only one of firewalld, nftables and iptables"
}

cis_3_5_1_3() {
  cis_rec 1 "Ensure nftables either not installed or masked with firewalld" || return 0
  cis_skip "not applicable: iptables is the firewall utility (3.5.3); CIS configures only one of firewalld, nftables and iptables"
}

cis_3_5_1_4() {
  cis_rec 1 "Ensure firewalld service enabled and running" || return 0
  cis_skip "not applicable: iptables is the firewall utility (3.5.3); CIS configures only one of firewalld, nftables and iptables"
}

cis_3_5_1_5() {
  cis_rec 1 "Ensure firewalld default zone is set" || return 0
  cis_skip "not applicable: iptables is the firewall utility (3.5.3); CIS configures only one of firewalld, nftables and iptables"
}

cis_3_5_2_1() {
  cis_rec 1 "Ensure nftables is installed" || return 0
  cis_skip "not applicable: iptables is the firewall utility (3.5.3); CIS configures only one of firewalld, nftables and iptables"
}

cis_3_5_2_2() {
  cis_rec 1 "Ensure firewalld is either not installed or masked with nftables" || return 0
  cis_skip "not applicable: iptables is the firewall utility (3.5.3); CIS configures only one of firewalld, nftables and iptables"
}

cis_3_5_2_3() {
  cis_rec 1 "Ensure iptables-services not installed with nftables" || return 0
  cis_skip "not applicable: iptables is the firewall utility (3.5.3); CIS configures only one of firewalld, nftables and iptables"
}

cis_3_5_2_5() {
  cis_rec 1 "Ensure an nftables table exists" || return 0
  cis_skip "not applicable: iptables is the firewall utility (3.5.3); CIS configures only one of firewalld, nftables and iptables"
}

cis_3_5_2_6() {
  cis_rec 1 "Ensure nftables base chains exist" || return 0
  cis_skip "not applicable: iptables is the firewall utility (3.5.3); CIS configures only one of firewalld, nftables and iptables"
}

cis_3_5_2_7() {
  cis_rec 1 "Ensure nftables loopback traffic is configured" || return 0
  cis_skip "not applicable: iptables is the firewall utility (3.5.3); CIS configures only one of firewalld, nftables and iptables"
}

cis_3_5_2_9() {
  cis_rec 1 "Ensure nftables default deny firewall policy" || return 0
  cis_skip "not applicable: iptables is the firewall utility (3.5.3); CIS configures only one of firewalld, nftables and iptables"
}

cis_3_5_2_10() {
  cis_rec 1 "Ensure nftables service is enabled" || return 0
  cis_skip "not applicable: iptables is the firewall utility (3.5.3); CIS configures only one of firewalld, nftables and iptables"
}

cis_3_5_2_11() {
  cis_rec 1 "Ensure nftables rules are permanent" || return 0
  cis_skip "not applicable: iptables is the firewall utility (3.5.3); CIS configures only one of firewalld, nftables and iptables"
}

cis_3_5_3_1_1() {
  cis_rec 1 "Ensure iptables packages are installed" || return 0
  pkg_install iptables iptables-services
  cis_done
}

cis_3_5_3_1_2() {
  cis_rec 1 "Ensure nftables is not installed with iptables" || return 0
  pkg_remove nftables
  cis_done
}

cis_3_5_3_1_3() {
  cis_rec 1 "Ensure firewalld is either not installed or masked with iptables" || return 0
  pkg_remove firewalld
  mask_services firewalld.service
  cis_done
}

cis_3_5_3_2_1() {
  cis_rec 1 "Ensure iptables loopback traffic is configured" || return 0
  iptables_rules
  cis_done
}

cis_3_5_3_2_3() {
  cis_rec 1 "Ensure iptables rules exist for all open ports" || return 0
  cis_skip_excepted "iptables rules on a node are managed by kube-proxy"
}

cis_3_5_3_2_4() {
  cis_rec 1 "Ensure iptables default deny firewall policy" || return 0
  cis_skip_excepted "a default-deny policy would block the kubelet (10250), the VPC CNI, kube-proxy and EKS Pod Identity; the IPv4 policies stay ACCEPT"
}

cis_3_5_3_2_5() {
  cis_rec 1 "Ensure iptables rules are saved" || return 0
  iptables_rules
  cis_done
}

cis_3_5_3_2_6() {
  cis_rec 1 "Ensure iptables is enabled and running" || return 0
  iptables_rules
  svc_enable iptables.service
  cis_done
}

cis_3_5_3_3_1() {
  cis_rec 1 "Ensure ip6tables loopback traffic is configured" || return 0
  iptables_rules
  cis_done
}

cis_3_5_3_3_3() {
  cis_rec 1 "Ensure ip6tables firewall rules exist for all open ports" || return 0
  cis_skip_excepted "ip6tables rules for the ports of host-network pods are managed by Kubernetes"
}

cis_3_5_3_3_4() {
  cis_rec 1 "Ensure ip6tables default deny firewall policy" || return 0
  # default deny, with allow rules for the kubelet, EKS Pod Identity and pod traffic
  iptables_rules
  cis_done
}

cis_3_5_3_3_5() {
  cis_rec 1 "Ensure ip6tables rules are saved" || return 0
  iptables_rules
  cis_done
}

cis_3_5_3_3_6() {
  cis_rec 1 "Ensure ip6tables is enabled and running" || return 0
  iptables_rules
  svc_enable ip6tables.service
  cis_done
}
