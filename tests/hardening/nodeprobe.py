"""Run packer/scripts/node/probe.sh against a described node: a throwaway root tree
(NODE_PROBE_ROOT) and a directory of generated stub commands first on PATH.

A ``Node`` says what the node looks like (files, unit states, what modprobe, iptables, chronyc
and the instance metadata service answer); ``run_probe`` builds the tree and the stubs, runs the
real probe with bash and returns its output with every command call the stubs recorded. A stub
refuses (records, exits 1) anything but the read-only calls it answers, so a test can prove the
probe changes nothing.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PROBE = REPO / "packer" / "scripts" / "node" / "probe.sh"
CATALOGUE = REPO / "pipeline" / "data" / "node" / "amazon-linux-2023.json"

# Commands that would change the node: stubbed so that any call is recorded (and fails).
FORBIDDEN = (
    "sysctl",
    "mount",
    "umount",
    "insmod",
    "rmmod",
    "nft",
    "ip",
    "ip6tables",
    "iptables-restore",
    "chronyd",
    "dnf",
    "rpm",
    "setenforce",
    "tee",
    "touch",
    "rm",
    "mv",
    "cp",
)


def catalogue_ids() -> list[str]:
    data = json.loads(CATALOGUE.read_text(encoding="utf-8"))
    return [check["id"] for check in data["checks"]]


HEALTHY_FILES: dict[str, str] = {
    "/etc/sysctl.d/99-kubernetes-cri.conf": (
        "net.bridge.bridge-nf-call-ip6tables = 1\nnet.bridge.bridge-nf-call-iptables = 1\n"
        "net.ipv4.ip_forward = 1\n"
    ),
    "/etc/sysctl.d/zz-cis-hardening.conf": "net.ipv4.conf.all.rp_filter = 1\n",
    "/etc/sysctl.conf": "fs.inotify.max_user_watches=524288\n",
    "/etc/modules-load.d/containerd.conf": "",
    "/etc/modules-load.d/cis-eks-node.conf": "# node\noverlay\nbr_netfilter\n",
    "/etc/modprobe.d/cis-squashfs.conf": "install squashfs /bin/false\nblacklist squashfs\n",
    "/proc/sys/net/ipv4/ip_forward": "1\n",
    "/proc/sys/net/bridge/bridge-nf-call-iptables": "1\n",
    "/proc/sys/net/bridge/bridge-nf-call-ip6tables": "1\n",
    "/proc/modules": (
        "br_netfilter 36864 0 - Live 0x0\nbridge 389120 1 br_netfilter, Live 0x0\n"
        "overlay 200704 0 - Live 0x0\n"
    ),
    "/proc/cmdline": "BOOT_IMAGE=/boot/vmlinuz root=UUID=1234 ro console=ttyS0 selinux=1\n",
    "/proc/mounts": (
        "/dev/nvme0n1p1 / xfs rw,noatime 0 0\n"
        "tmpfs /run tmpfs rw,nosuid,nodev,size=3g 0 0\n"
        "tmpfs /tmp tmpfs rw,nosuid,nodev,noexec 0 0\n"
        "/dev/nvme1n1p5 /var xfs rw,nosuid,nodev 0 0\n"
        "/dev/nvme1n1p1 /var/tmp xfs rw,nosuid,nodev,noexec 0 0\n"
        "/dev/nvme1n1p2 /var/log xfs rw,nosuid,nodev,noexec 0 0\n"
        "/dev/nvme1n1p4 /home xfs rw,nosuid,nodev 0 0\n"
    ),
    "/etc/fstab": (
        "UUID=1234 / xfs defaults,noatime 1 1\n"
        "UUID=ABCD /boot/efi vfat defaults,umask=0077 0 2\n"
        "tmpfs /tmp tmpfs mode=1777,nodev,noexec,nosuid 0 0\n"
        "LABEL=cis-var\t/var\txfs\tdefaults,nofail,x-systemd.device-timeout=10s,nodev,nosuid\t0 0\n"
        "LABEL=cis-vartmp\t/var/tmp\txfs\tdefaults,nofail,noexec\t0 0\n"
        "LABEL=cis-home\t/home\txfs\tdefaults,nofail,nodev\t0 0\n"
    ),
}
HEALTHY_EXECUTABLES = ("/usr/bin/nodeadm", "/usr/bin/kubelet", "/usr/bin/containerd")
HEALTHY_UNITS = {
    "nodeadm-config.service": "enabled",
    "nodeadm-run.service": "enabled",
    "kubelet.service": "disabled",
    "containerd.service": "disabled",
    "chronyd.service": "enabled",
}
CHRONY_SYNCED = (
    "Reference ID    : A9FEA97B (169.254.169.123)\nStratum         : 4\n"
    "System time     : 0.000001 seconds fast of NTP time\nLeap status     : Normal\n"
)


@dataclass
class Node:
    """What the probe should see. ``None`` for a file: it does not exist."""

    files: dict[str, str | None] = field(default_factory=lambda: dict(HEALTHY_FILES))
    links: dict[str, str] = field(default_factory=dict)  # path -> symbolic link target
    executables: dict[str, bool] = field(
        default_factory=lambda: dict.fromkeys(HEALTHY_EXECUTABLES, True)
    )
    units: dict[str, str] = field(default_factory=lambda: dict(HEALTHY_UNITS))
    active: dict[str, str] = field(default_factory=lambda: {"chronyd.service": "active"})
    # modprobe -n -v NAME: (exit status, output)
    modprobe: dict[str, tuple[int, str]] = field(
        default_factory=lambda: {
            "overlay": (0, ""),
            "br_netfilter": (0, ""),
        }
    )
    iptables_version: tuple[int, str] = (0, "iptables v1.8.8 (nf_tables)")
    iptables_rules: tuple[int, str] = (0, "-P INPUT ACCEPT\n-P FORWARD ACCEPT\n-P OUTPUT ACCEPT\n")
    chronyc: tuple[int, str] = (0, CHRONY_SYNCED)
    # curl: the token PUT (exit status, token), GET with token, GET without token (HTTP codes)
    imds_token: tuple[int, str] = (0, "AQAEAFakeToken_-=")
    imds_with_token: str = "200"
    imds_without_token: str = "401"
    extra_stub: dict[str, str] = field(default_factory=dict)  # name -> bash body


@dataclass
class ProbeRun:
    returncode: int
    stdout: str
    stderr: str
    calls: list[str]
    root: Path

    def lines(self) -> list[str]:
        return self.stdout.splitlines()

    def results(self) -> dict[str, tuple[str, str]]:
        """check id -> (PASS|FAIL, observed)."""
        out: dict[str, tuple[str, str]] = {}
        for line in self.lines():
            if line.startswith("NODE|"):
                _, check, status, observed = line.split("|", 3)
                out[check] = (status, observed)
        return out


def _q(text: str) -> str:
    return shlex.quote(text)


def _stub(name: str, body: str, log: Path) -> str:
    return f'#!/bin/bash\nprintf "%s\\n" "{name} $*" >>{_q(str(log))}\n{body}\n'


def _stubs(node: Node, log: Path) -> dict[str, str]:
    units = "\n".join(f"  {_q(u)}) echo {_q(s)} ;;" for u, s in node.units.items())
    active = "\n".join(f"  {_q(u)}) echo {_q(s)}; exit 0 ;;" for u, s in node.active.items())
    modules = "\n".join(
        f"  {_q(m)}) printf '%s' {_q(out + chr(10) if out else '')}; exit {rc} ;;"
        for m, (rc, out) in node.modprobe.items()
    )
    refuse = 'echo "refused: $0 $*" >&2; exit 1'
    stubs = {
        "systemctl": f"""
if [[ $# -eq 2 && $1 == is-enabled ]]; then
  case $2 in
{units}
  *) echo "Failed to get unit file state for $2: No such file or directory" >&2; exit 1 ;;
  esac
  exit 0
fi
if [[ $# -eq 2 && $1 == is-active ]]; then
  case $2 in
{active}
  esac
  echo inactive; exit 3
fi
{refuse}""",
        "modprobe": f"""
if [[ $# -eq 3 && $1 == -n && $2 == -v ]]; then
  case $3 in
{modules}
  esac
  echo "modprobe: FATAL: Module $3 not found in directory /lib/modules/6.1.0" >&2; exit 1
fi
{refuse}""",
        "iptables": f"""
case "$*" in
--version) printf '%s\\n' {_q(node.iptables_version[1])}; exit {node.iptables_version[0]} ;;
-S) printf '%s' {_q(node.iptables_rules[1])}; exit {node.iptables_rules[0]} ;;
esac
{refuse}""",
        "chronyc": f"""
if [[ "$*" == tracking ]]; then printf '%s' {_q(node.chronyc[1])}; exit {node.chronyc[0]}; fi
{refuse}""",
        "curl": f"""
args=" $* "
rest=${{args// -o \\/dev\\/null / }}
case $rest in
*" -o "* | *" -O "* | *" --output"* | *" -d "* | *" --data"* | *" -T "*) {refuse} ;;
esac
if [[ $args == *" -X PUT "* ]]; then
  [[ $args == *" http://169.254.169.254/latest/api/token "* ]] || {{ {refuse}; }}
  printf '%s' {_q(node.imds_token[1])}; exit {node.imds_token[0]}
fi
[[ $args == *" -X "* ]] && {{ {refuse}; }}
case $args in
*"X-aws-ec2-metadata-token: "*" http://169.254.169.254/latest/meta-data/"*)
  printf '%s' {_q(node.imds_with_token)}; exit 0 ;;
*" http://169.254.169.254/latest/meta-data/"*)
  printf '%s' {_q(node.imds_without_token)}; exit 0 ;;
esac
{refuse}""",
    }
    for name in FORBIDDEN:
        stubs[name] = refuse
    stubs.update(node.extra_stub)
    return {name: _stub(name, body, log) for name, body in stubs.items()}


def build(base: Path, node: Node) -> tuple[Path, Path, Path]:
    """The root tree, the stub directory and the call log for ``node`` under ``base``."""
    root = base / "root"
    bindir = base / "bin"
    log = base / "calls.log"
    root.mkdir(parents=True)
    bindir.mkdir()
    log.write_text("")
    for rel, content in node.files.items():
        if content is None:
            continue
        path = root / rel.lstrip("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    for rel, target in node.links.items():
        path = root / rel.lstrip("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.symlink_to(target)
    for rel, executable in node.executables.items():
        path = root / rel.lstrip("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("#!/bin/sh\n")
        os.chmod(path, 0o755 if executable else 0o644)
    for name, text in _stubs(node, log).items():
        stub = bindir / name
        stub.write_text(text)
        os.chmod(stub, 0o755)
    return root, bindir, log


def run_probe(
    base: Path,
    node: Node,
    *,
    root: Path | None = None,
    prepare: Callable[[Path], None] | None = None,
    shell: tuple[str, ...] = ("bash",),
) -> ProbeRun:
    """Run the probe with bash on ``node`` (or on an existing ``root`` with ``node``'s stubs);
    ``prepare(root)`` adds to the built tree before the run; ``shell`` runs the script."""
    built_root, bindir, log = build(base, node)
    if prepare is not None:
        prepare(built_root)
    root = root or built_root
    home = base / "home"
    home.mkdir()
    env = {
        "PATH": f"{bindir}:/usr/bin:/bin",
        "HOME": str(home),
        "TMPDIR": str(home),
        "LANG": "C",
        "NODE_PROBE_ROOT": str(root),
    }
    proc = subprocess.run(
        [*shell, str(PROBE)],
        capture_output=True,
        text=True,
        env=env,
        cwd=home,
        timeout=60,
    )
    return ProbeRun(proc.returncode, proc.stdout, proc.stderr, log.read_text().splitlines(), root)
