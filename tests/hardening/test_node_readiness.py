"""The hardening passes its own node-readiness probe (packer/scripts/node/probe.sh), as far as
the hardened configuration decides it: the real probe runs on a boot view of the hardened fake
root (its /etc, and the /proc a boot would derive from it), and the primitives refuse any
remediation that would break an EKS node requirement. SELinux follows ``CIS_SELINUX_MODE``
(Packer ``selinux_mode``)."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.hardening.conftest import (
    RUNNER_KIND,
    SCRIPTS,
    Run,
    _env,
    _prefix,
    _result,
    needs_runner,
    new_root,
    run_functions,
)
from tests.hardening.nodeprobe import HEALTHY_UNITS, Node, run_probe

pytestmark = needs_runner
Hardened = Callable[[str, int], Run]

# Decided by the hardened configuration (checked here); the others (iptables, chrony's sync,
# IMDS) are runtime answers the stubs give as a healthy node would, checked on the test instance.
STATIC_CHECKS = {
    "node.nodeadm.enabled",
    "node.kubelet.installed",
    "node.containerd.installed",
    "node.kernel.overlay",
    "node.kernel.br_netfilter",
    "node.sysctl.ip_forward",
    "node.sysctl.bridge_nf_call_iptables",
    "node.sysctl.bridge_nf_call_ip6tables",
    "node.mounts.exec",
    "node.fstab.nofail",
}


def _conf_lines(path: Path) -> list[str]:
    return [
        line.strip()
        for line in path.read_text().splitlines()
        if line.strip() and not line.lstrip().startswith(("#", ";"))
    ]


def _blocked(etc: Path) -> set[str]:
    """Modules that modprobe.d blacklists or installs to false/true."""
    blocked = set()
    for conf in sorted((etc / "modprobe.d").glob("*.conf")):
        for line in _conf_lines(conf):
            words = line.split()
            if words[0] == "blacklist" or (
                words[0] == "install" and words[2].rsplit("/", 1)[-1] in ("false", "true")
            ):
                blocked.add(words[1].replace("-", "_"))
    return blocked


def _boot_view(hardened_root: Path, view: Path) -> dict[str, str | None]:
    """The files a boot of the hardened image shows the probe: /etc as hardened, /proc/mounts
    from its fstab, the modules modules-load.d loads (unless blocked), and /proc/sys after
    systemd-sysctl applied /etc/sysctl.d (sorted by name) and /etc/sysctl.conf."""
    shutil.copytree(hardened_root / "etc", view / "etc", symlinks=True)
    etc = view / "etc"
    files: dict[str, str | None] = {}
    mounts = ["/dev/nvme0n1p1 / xfs rw,noatime 0 0", "tmpfs /run tmpfs rw,nosuid,nodev 0 0"]
    for line in _conf_lines(etc / "fstab"):
        spec, mountpoint, fstype, options = line.split()[:4]
        if mountpoint != "/" and fstype != "swap":
            mounts.append(f"{spec} {mountpoint} {fstype} rw,{options} 0 0")
    files["/proc/mounts"] = "\n".join(mounts) + "\n"
    blocked = _blocked(etc)
    loaded = sorted(
        {
            name.replace("-", "_")
            for conf in sorted((etc / "modules-load.d").glob("*.conf"))
            for name in _conf_lines(conf)
        }
        - blocked
    )
    files["/proc/modules"] = "".join(f"{m} 16384 0 - Live 0x0\n" for m in loaded)
    runtime = {"net.ipv4.ip_forward": "0"}
    if "br_netfilter" in loaded:
        runtime |= {
            "net.bridge.bridge-nf-call-iptables": "0",
            "net.bridge.bridge-nf-call-ip6tables": "0",
        }
    sysctl_files = sorted((etc / "sysctl.d").glob("*.conf"), key=lambda p: p.name)
    for conf in [*sysctl_files, etc / "sysctl.conf"]:
        for line in _conf_lines(conf) if conf.exists() else []:
            key, _, value = line.partition("=")
            key = key.strip().lstrip("-").replace("/", ".")
            if key in runtime:  # a key that does not exist is not created by sysctl
                runtime[key] = value.strip()
    for key, value in runtime.items():
        files["/proc/sys/" + key.replace(".", "/")] = value + "\n"
    files["/proc/cmdline"] = "BOOT_IMAGE=/boot/vmlinuz root=UUID=1234 ro selinux=1\n"
    return files


def _node_for(run: Run) -> Node:
    """What the stubs answer: the unit states the hardening left (stub state), modprobe's dry
    run from the hardened modprobe.d, the EKS base image's binaries and units otherwise."""
    units = dict(HEALTHY_UNITS) | {"chronyd.service": "disabled"}
    for path in sorted((run.state / "units").glob("*")):
        units[path.name] = path.read_text().strip()
    installs = {}
    for conf in sorted((run.root / "etc/modprobe.d").glob("*.conf")):
        for line in _conf_lines(conf):
            words = line.split()
            if words[0] == "install":
                installs[words[1]] = "install " + " ".join(words[2:])
    modprobe = {
        m: (0, installs.get(m, f"insmod /lib/modules/6.1.0/kernel/{m}.ko.xz"))
        for m in ("overlay", "br_netfilter")
    }
    return Node(units=units, modprobe=modprobe)


def _with_etc(view: Path) -> Callable[[Path], None]:
    def prepare(root: Path) -> None:
        shutil.copytree(view / "etc", root / "etc", symlinks=True, dirs_exist_ok=True)

    return prepare


@pytest.mark.parametrize("level", [1, 2])
def test_the_hardened_al2023_image_passes_the_node_probe(
    hardened: Hardened, tmp_path: Path, level: int
) -> None:
    run = hardened("al2023", level)
    assert run.returncode == 0, run.stderr[-3000:]
    view = tmp_path / "view"
    node = _node_for(run)
    node.files = _boot_view(run.root, view)
    probe = run_probe(tmp_path / "probe", node, prepare=_with_etc(view))
    results = probe.results()
    assert set(STATIC_CHECKS) <= set(results)
    failed = {k: v for k, v in results.items() if v[0] != "PASS"}
    assert not failed, failed
    assert "cis-eks-node.conf" in results["node.kernel.br_netfilter"][1]
    assert "nofail: /var /var/tmp /var/log /var/log/audit /home" in results["node.fstab.nofail"][1]


def test_the_boot_view_catches_a_broken_hardening(hardened: Hardened, tmp_path: Path) -> None:
    """The check above can fail: the same view with overlay disabled and /var noexec."""
    run = hardened("al2023", 2)
    view = tmp_path / "view"
    node = _node_for(run)
    node.files = _boot_view(run.root, view)
    node.files["/proc/mounts"] = (node.files["/proc/mounts"] or "").replace(
        " /var xfs rw,", " /var xfs rw,noexec,"
    )

    def broken(root: Path) -> None:
        _with_etc(view)(root)
        (root / "etc/modprobe.d/cis-overlay.conf").write_text("install overlay /bin/false\n")

    results = run_probe(tmp_path / "probe", node, prepare=broken).results()
    assert results["node.kernel.overlay"][0] == "FAIL"
    assert results["node.mounts.exec"][0] == "FAIL"


# --- The primitives refuse what would break the node --------------------------------------------


def _run_inline(
    tmp_path: Path, stub_bin: Path, body: str, env: dict[str, str] | None = None
) -> Run:
    """Run one ad-hoc recommendation (cis_9_9_9) made of lib.sh primitives on a fresh root."""
    assert RUNNER_KIND is not None
    root, state = new_root(tmp_path, "al2023")
    script = (
        f'. "{SCRIPTS}/cis/lib.sh"; cis_init al2023 2 || exit 2\n'
        f'cis_9_9_9() {{ cis_rec 1 "Test recommendation" || return 0\n{body}\ncis_done; }}\n'
        "cis_run_one cis_9_9_9\n"
    )
    proc = subprocess.run(
        [*_prefix(state, save=False), "bash", "-c", script],
        capture_output=True,
        text=True,
        env=_env(root, state, stub_bin, True) | (env or {}),
        timeout=60,
    )
    return _result(proc, root, state, "al2023", 2)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("module_disable overlay", "the overlay kernel module is needed by the EKS node"),
        ("module_disable br-netfilter", "the br-netfilter kernel module is needed"),
        ("sysctl_set net.ipv4.ip_forward 0", "net.ipv4.ip_forward = 0 would break the EKS node"),
        (
            "sysctl_set net.bridge.bridge-nf-call-iptables 0",
            "net.bridge.bridge-nf-call-iptables = 0 would break",
        ),
        ("svc_mask kubelet.service", "kubelet.service is needed by the EKS node"),
        ("mask_services nodeadm-run.service", "nodeadm-run.service is needed by the EKS node"),
        ("svc_mask chronyd.service", "chronyd.service is needed by the EKS node"),
        (
            "data_volume /var; fstab_option /var noexec",
            "noexec on /var would stop /var/lib/containerd",
        ),
        (
            "fstab_option / noexec",
            "noexec on / would stop /var/lib/containerd",
        ),
    ],
)
def test_a_remediation_that_breaks_the_node_fails(
    tmp_path: Path, stub_bin: Path, body: str, reason: str
) -> None:
    run = _run_inline(tmp_path, stub_bin, body)
    assert run.returncode == 1
    assert run.lines["9.9.9"].startswith(f"failed ({reason}"), run.lines
    assert not (run.root / "etc/modprobe.d/cis-overlay.conf").exists()


def test_allowed_remediations_still_apply(tmp_path: Path, stub_bin: Path) -> None:
    body = (
        "module_disable squashfs; sysctl_set net.ipv4.ip_forward 1\n"
        "data_volume /var/tmp; fstab_option /var/tmp noexec; fstab_option /var nodev nosuid"
    )
    run = _run_inline(tmp_path, stub_bin, body)
    assert run.returncode == 0, run.stderr
    assert run.lines["9.9.9"] == "applied"


# --- SELinux: CIS_SELINUX_MODE (Packer selinux_mode) ---------------------------------------------


@pytest.mark.parametrize("platform", ["al2023", "al2"])
@pytest.mark.parametrize(
    ("mode", "level", "want", "outcome"),
    [
        (None, 2, "permissive", "skipped (excepted: selinux_mode is permissive"),
        ("permissive", 2, "permissive", "skipped (excepted: selinux_mode is permissive"),
        ("enforcing", 2, "enforcing", "already compliant"),  # 1.6.1.4 set it first
        ("enforcing", 1, "enforcing", "skipped (level 2)"),
        (None, 1, "permissive", "skipped (level 2)"),
    ],
)
def test_selinux_mode_is_a_choice(
    tmp_path: Path,
    stub_bin: Path,
    platform: str,
    mode: str | None,
    level: int,
    want: str,
    outcome: str,
) -> None:
    root, state = new_root(tmp_path, platform)
    env = {"CIS_SELINUX_MODE": mode} if mode else {}
    run = run_functions(
        root, platform, level, stub_bin, state, ["cis_1_6_1_4", "cis_1_6_1_5"], extra_env=env
    )
    assert run.returncode == 0, run.stderr
    config = run.file("/etc/selinux/config").splitlines()
    assert f"SELINUX={want}" in config
    assert run.lines["1.6.1.5"].startswith(outcome), run.lines


def test_an_unknown_selinux_mode_fails(tmp_path: Path, stub_bin: Path) -> None:
    root, state = new_root(tmp_path, "al2023")
    run = run_functions(
        root, "al2023", 2, stub_bin, state, ["cis_1_6_1_4", "cis_1_6_1_5"],
        extra_env={"CIS_SELINUX_MODE": "disabled"},
    )  # fmt: skip
    assert run.returncode == 1
    assert run.lines["1.6.1.4"].startswith("failed (CIS_SELINUX_MODE=disabled: expected")
    assert run.lines["1.6.1.5"].startswith("failed (CIS_SELINUX_MODE=disabled: expected")
    assert "SELINUX=permissive" in run.file("/etc/selinux/config")
