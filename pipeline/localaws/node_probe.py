"""What the node probe prints on an emulated instance, in ``pipeline.node``'s line format.

Every check of the node catalogue PASSes on hardened and stock images alike (the EKS-optimized
AMI is a working node, and the hardening must keep it one); a scenario's ``node:`` section makes
chosen checks FAIL with the text it gives, leaves lines or the end line out, miscounts the end
line, or prints filler before the probe (so the output is cut at SSM's 24,000 characters).
The command text is recognised as the probe by ``MARKER`` (the probe prints its header with it).
"""

from __future__ import annotations

from pipeline import node
from pipeline.localaws.profiles import HostProfile
from pipeline.localaws.scenario_sections import NodeKnobs

MARKER = "NODE-PROBE|1|"
STDOUT_LIMIT = 24_000  # GetCommandInvocation's StandardOutputContent
STDERR_LIMIT = 8_000  # GetCommandInvocation's StandardErrorContent
PLUGIN_OUTPUT_LIMIT = 2_500  # ListCommandInvocations' CommandPlugins[].Output

# What a healthy EKS AL2023 node shows for each check (the probe's own words may differ).
_HEALTHY = {
    "node.nodeadm.installed": "/usr/bin/nodeadm is executable",
    "node.nodeadm.enabled": "nodeadm-config.service=enabled nodeadm-run.service=enabled",
    "node.kubelet.installed": "/usr/bin/kubelet present; kubelet.service present, not masked",
    "node.containerd.installed": "/usr/bin/containerd present; containerd.service present",
    "node.kernel.overlay": "modprobe -n overlay: loadable; not blacklisted",
    "node.kernel.br_netfilter": "br_netfilter loadable; /etc/modules-load.d lists it",
    "node.sysctl.ip_forward": "net.ipv4.ip_forward=1 (runtime and /etc/sysctl.d)",
    "node.sysctl.bridge_nf_call_iptables": "net.bridge.bridge-nf-call-iptables=1",
    "node.sysctl.bridge_nf_call_ip6tables": "net.bridge.bridge-nf-call-ip6tables=1",
    "node.mounts.exec": "no noexec on /var/lib/containerd /var/lib/kubelet /opt/cni/bin "
    "/run/containerd",
    "node.netfilter.usable": "iptables v1.8.8 (nf_tables): rules listed",
    "node.time.sync": "chronyd enabled, active; Leap status: Normal",
    "node.fstab.nofail": "no separate data volume entries without nofail",
    "node.imds.v2": "IMDSv2 token accepted; token-less request: 401",
}


def is_probe(script: str) -> bool:
    return MARKER in script


def output(profile: HostProfile | None, knobs: NodeKnobs) -> str:
    """The probe's full stdout on a host of ``profile`` (None: an OS no profile knows)."""
    catalogue = node.load_catalogue()
    lines = []
    if knobs.padding:
        filler = "# " + "-" * 97
        lines += [filler] * (knobs.padding // (len(filler) + 1) + 1)
    lines.append(node.header(len(catalogue.checks)))
    printed = 0
    for check in catalogue.checks:
        if check.id in knobs.drop_lines:
            continue
        failed = knobs.fail.get(check.id)
        observed = failed if failed is not None else _HEALTHY.get(check.id, "as required")
        lines.append(node.format_line(check.id, failed is None, observed))
        printed += 1
    if not knobs.drop_trailer:
        lines.append(node.trailer(printed + (1 if knobs.miscount_trailer else 0)))
    return "\n".join(lines) + "\n"
