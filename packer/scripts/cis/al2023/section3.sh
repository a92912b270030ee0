# shellcheck shell=bash
# CIS Amazon Linux 2023 Benchmark v1.0.0, section 3: network configuration.
# EKS-aware: IP forwarding stays on (kube-proxy, the VPC CNI; 3.2.1 is an approved exception),
# and the nftables ruleset has no default-deny policy (3.4.2.7 is an approved exception), so the
# kubelet (10250), the VPC CNI, kube-proxy and EKS Pod Identity (169.254.170.23) keep working.

# The recommendations of this section that both benchmarks share (same ID, title, level and
# remediation) are defined once, in ../shared/section3.sh; this file never redefines them.
# shellcheck source=../shared/section3.sh source-path=SCRIPTDIR
. "$(dirname "${BASH_SOURCE[0]}")/../shared/section3.sh"

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
