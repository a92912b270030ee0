"""cis-harden.sh on a fake root: output contract, resulting files, recorded calls, idempotence,
and the EKS guarantees (forwarding on, no firewall that cuts off the node, container paths left
alone, sshd not restarted)."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.hardening import fakeroot
from tests.hardening.conftest import (
    HARDEN,
    LINE,
    PLATFORM_LEVELS,
    REPO,
    RUNNER_KIND,
    Run,
    catalogue,
    defined_functions,
    function_id,
    harden,
    needs_root,
    needs_runner,
    new_root,
    run_functions,
)

pytestmark = needs_runner

Hardened = Callable[[str, int], Run]
CASES = yaml.safe_load((REPO / "tests/cases/hardening/expected.yaml").read_text())


def _ids(level_pairs: list[tuple[str, int]]) -> list[str]:
    return [f"{p}-L{lvl}" for p, lvl in level_pairs]


# --- The output contract -------------------------------------------------------------------


@pytest.mark.parametrize(("platform", "level"), PLATFORM_LEVELS, ids=_ids(PLATFORM_LEVELS))
def test_every_function_prints_one_line_with_the_catalogue_title(
    hardened: Hardened, platform: str, level: int
) -> None:
    run = hardened(platform, level)
    assert run.returncode == 0, run.stderr[-3000:]
    cat = catalogue(platform)
    lines = run.stdout.splitlines()
    bad = [line for line in lines if not LINE.match(line)]
    assert not bad, f"lines not in the '<id> <title>: <outcome>' format: {bad}"
    seen: list[str] = []
    for line in lines:
        match = LINE.match(line)
        assert match is not None
        rid, title, outcome = match["id"], match["title"], match["outcome"]
        assert rid in cat, f"{rid} is not a recommendation of the catalogue"
        assert title == cat[rid]["title"], f"{rid}: {title!r} != catalogue {cat[rid]['title']!r}"
        assert not outcome.startswith("failed"), line
        seen.append(rid)
    expected = [function_id(name) for name in defined_functions(platform)]
    assert sorted(seen) == sorted(expected), "every function reports exactly once"
    assert len(seen) == len(set(seen))


@pytest.mark.parametrize("platform", ["al2023", "al2"])
def test_level_1_skips_level_2_recommendations(hardened: Hardened, platform: str) -> None:
    run = hardened(platform, 1)
    cat = catalogue(platform)
    for rid, outcome in run.lines.items():
        if cat[rid]["level"] == 2:
            assert outcome == "skipped (level 2)", f"{rid}: {outcome}"
        else:
            assert outcome != "skipped (level 2)", rid


@pytest.mark.parametrize("platform", ["al2023", "al2"])
def test_level_1_leaves_level_2_settings_alone(hardened: Hardened, platform: str) -> None:
    run = hardened(platform, 1)
    assert "SELINUX=permissive" in run.file("/etc/selinux/config")
    assert not list((run.root / "etc/audit/rules.d").glob("50-cis-*.rules"))
    assert "audit=1" not in run.file("/etc/default/grub")
    # the level 1 mount options need the separate file systems, which are created at level 1 too
    assert "LABEL=cis-vartmp\t/var/tmp" in run.file("/etc/fstab")


# --- The resulting files and recorded calls (tests/cases/hardening/expected.yaml) ------------


def _cases() -> list[Any]:
    params = []
    for case in CASES:
        platforms = ["al2023", "al2"] if case["platform"] == "both" else [case["platform"]]
        for platform in platforms:
            what = case.get("path") or "call"
            params.append(pytest.param(platform, case, id=f"{platform}-{case['id']}-{what}"))
    return params


@pytest.mark.parametrize(("platform", "case"), _cases())
def test_expected_state(hardened: Hardened, platform: str, case: dict[str, Any]) -> None:
    run = hardened(platform, 2)
    if "call" in case:
        pattern = re.compile(case["call"].replace("{root}", re.escape(str(run.root))))
        assert any(pattern.search(call) for call in run.calls), (
            f"no recorded call matches {pattern.pattern}"
        )
        return
    path = run.root / case["path"].lstrip("/")
    if case.get("missing"):
        assert not path.exists() and not path.is_symlink(), f"{case['path']} still exists"
        return
    assert path.exists(), f"{case['path']} does not exist"
    if "mode" in case:
        assert f"{run.mode(case['path']):o}" == case["mode"]
    if "line" in case:
        lines = path.read_text().splitlines()
        assert case["line"] in lines, f"{case['path']} has no line {case['line']!r}:\n" + "\n".join(
            lines
        )
    if "mount" in case:
        spec, mountpoint, fstype, options = case["mount"]
        entries = [line.split() for line in path.read_text().splitlines() if line.strip()]
        entry = next((e for e in entries if e[1] == mountpoint), None)
        assert entry is not None, f"no fstab entry for {mountpoint}"
        assert entry[0] == spec and entry[2] == fstype, entry
        assert set(options.split(",")) <= set(entry[3].split(",")), entry
    if "absent" in case:
        active = [
            line for line in path.read_text().splitlines() if not line.lstrip().startswith("#")
        ]
        offending = [line for line in active if re.search(case["absent"], line)]
        assert not offending, f"{case['path']}: {offending}"


# --- Idempotence -----------------------------------------------------------------------------


@pytest.mark.parametrize("platform", ["al2023", "al2"])
def test_second_run_changes_nothing(hardened: Hardened, stub_bin: Path, platform: str) -> None:
    first = hardened(platform, 2)
    before = fakeroot.snapshot(first.root)
    second = harden(first.root, platform, 2, stub_bin, first.state)
    assert second.returncode == 0, second.stderr[-3000:]
    applied_before = {rid for rid, outcome in first.lines.items() if outcome == "applied"}
    assert applied_before, "the first run applied something"
    for rid, outcome in second.lines.items():
        assert outcome == "already compliant" or outcome.startswith("skipped ("), (rid, outcome)
        assert outcome == first.lines[rid] or rid in applied_before
    after = fakeroot.snapshot(first.root)
    changed = sorted(p for p in before.keys() | after.keys() if before.get(p) != after.get(p))
    assert not changed, f"the second run changed {changed}"
    changing = [
        c for c in second.calls if re.match(r"^(dnf|yum) .* (install|remove)|^sfdisk|^mkfs", c)
    ]
    assert not changing, changing


# --- EKS guarantees --------------------------------------------------------------------------


@pytest.mark.parametrize(("platform", "level"), PLATFORM_LEVELS, ids=_ids(PLATFORM_LEVELS))
def test_ip_forwarding_stays_on(hardened: Hardened, platform: str, level: int) -> None:
    run = hardened(platform, level)
    assert (
        "net.ipv4.ip_forward = 1" in run.file("/etc/sysctl.d/99-kubernetes-cri.conf").splitlines()
    )
    for path in [run.root / "etc/sysctl.conf", *sorted((run.root / "etc/sysctl.d").glob("*.conf"))]:
        for line in path.read_text().splitlines():
            if line.lstrip().startswith("#"):
                continue
            assert not re.match(
                r"\s*net\.ipv[46]\.(ip_forward|conf\.\S+\.forwarding)\s*=\s*0", line
            ), f"{path}: {line}"
    assert not any("forward" in c for c in run.calls if c.startswith("sysctl"))
    assert run.lines["3.2.1"].startswith("skipped (")


def _policy(chain_line: str) -> str:
    return chain_line.split()[1]


def test_al2023_firewall_has_no_default_deny(hardened: Hardened) -> None:
    ruleset = hardened("al2023", 2).file("/etc/nftables/cis-eks.nft")
    policies = re.findall(r"hook (input|forward|output) priority filter; policy (\w+);", ruleset)
    assert sorted(policies) == [("forward", "accept"), ("input", "accept"), ("output", "accept")]
    assert "flush ruleset" not in ruleset, "kube-proxy and the VPC CNI rules must never be flushed"


def test_al2_firewall_allows_what_eks_needs(hardened: Hardened) -> None:
    run = hardened("al2", 2)
    for family in ("iptables", "ip6tables"):
        rules = run.file(f"/etc/sysconfig/{family}").splitlines()
        denying = [line.split()[0][1:] for line in rules if re.match(r"^:\w+ (DROP|REJECT)", line)]
        if not denying:
            continue
        # default-deny only with explicit allow rules for the kubelet, Pod Identity and pods
        assert "-A INPUT -p tcp --dport 10250 -j ACCEPT" in rules, family
        assert any("fd00:ec2::23" in r and "80,2703" in r for r in rules), family
        assert "-A INPUT -i eni+ -j ACCEPT" in rules, family
        assert "-A FORWARD -o eni+ -j ACCEPT" in rules, family
        assert any(r.startswith("-A OUTPUT") and "NEW" in r for r in rules), family
    ipv4 = run.file("/etc/sysconfig/iptables").splitlines()
    assert {":INPUT ACCEPT [0:0]", ":FORWARD ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]"} <= set(ipv4)
    for unit in ("iptables", "ip6tables"):
        dropin = run.file(f"/etc/systemd/system/{unit}.service.d/50-cis-eks.conf").splitlines()
        assert "ExecStop=" in dropin and "ExecReload=" in dropin, "stop/reload must not flush"


@pytest.mark.parametrize("platform", ["al2023", "al2"])
def test_node_services_are_left_running(hardened: Hardened, platform: str) -> None:
    run = hardened(platform, 2)
    protected = ("containerd", "kubelet", "amazon-ssm-agent", "nodeadm", "sshd", "chronyd")
    for call in run.calls:
        if re.match(r"^systemctl .*\b(stop|mask|disable|restart|reload)\b", call):
            assert not any(name in call for name in protected), call
        if re.match(r"^(dnf|yum) .* remove ", call):
            assert not any(name in call for name in protected), call


@needs_root
@pytest.mark.parametrize("platform", ["al2023", "al2"])
def test_container_paths_are_not_touched(hardened: Hardened, platform: str) -> None:
    run = hardened(platform, 2)
    snapshot = run.root / fakeroot.CONTAINER_SNAPSHOT.lstrip("/")
    assert (snapshot / "etc/x").stat().st_uid == fakeroot.ORPHAN_ID
    assert (snapshot / "etc/x").stat().st_mode & 0o777 == 0o666
    assert (snapshot / "tmp").stat().st_mode & 0o7777 == 0o777
    # the same defects outside the container paths are fixed
    assert (run.root / "opt/orphan").stat().st_uid == 0
    assert (run.root / "opt/orphan").stat().st_gid == 0


@pytest.mark.parametrize("platform", ["al2023", "al2"])
def test_sshd_is_configured_not_restarted(hardened: Hardened, platform: str) -> None:
    run = hardened(platform, 2)
    config = run.file("/etc/ssh/sshd_config").splitlines()
    assert config[0].startswith("# BEGIN cis-hardening"), "first value wins: the block is first"
    end = config.index("# END cis-hardening")
    if platform == "al2023":
        assert config.index("Include /etc/ssh/sshd_config.d/*.conf") > end
    assert not [c for c in run.calls if re.match(r"^systemctl .*(restart|reload|stop).*sshd", c)]
    assert "AllowUsers" not in "\n".join(config[:end]), "SSH access is an approved exception"


def test_data_volume_copies_var_and_home(hardened: Hardened) -> None:
    run = hardened("al2023", 2)
    mounts = run.file("/proc/self/mounts").splitlines()
    targets = [line.split()[1].removeprefix(str(run.root)) for line in mounts[1:]]
    assert targets == ["/var", "/var/tmp", "/var/log", "/var/log/audit", "/home"]
    staging = [c for c in run.calls if "/mnt/cis-data" in c and c.startswith("umount")]
    assert len(staging) == 5, "every staging mount is unmounted"
    assert not (run.root / "mnt/cis-data").exists()


# --- Failures and arguments ------------------------------------------------------------------


def test_missing_data_volume_fails_the_run(tmp_path: Path, stub_bin: Path) -> None:
    root, state = new_root(tmp_path, "al2023")
    (root / "dev/xvdb").unlink()
    run = run_functions(root, "al2023", 1, stub_bin, state, ["cis_1_1_3_2", "cis_1_1_1_3"])
    assert run.returncode == 1
    assert run.lines["1.1.3.2"].startswith("failed (data volume /dev/xvdb not found")
    assert run.lines["1.1.1.3"] == "applied", "a failure does not stop the other recommendations"
    assert LINE.match(run.stdout.splitlines()[0])


def test_a_partitioned_data_volume_is_never_overwritten(tmp_path: Path, stub_bin: Path) -> None:
    root, state = new_root(tmp_path, "al2023")
    fstab = root / "etc/fstab"
    fstab.write_text(fstab.read_text() + "/dev/xvdb1 /var/tmp xfs defaults 0 0\n")
    run = run_functions(root, "al2023", 2, stub_bin, state, ["cis_1_1_3_1"])
    assert run.returncode == 1
    assert "refusing to guess" in run.lines["1.1.3.1"]
    assert not [c for c in run.calls if c.startswith(("sfdisk", "mkfs"))]


def test_sshd_rejecting_the_config_rolls_it_back(tmp_path: Path, stub_bin: Path) -> None:
    root, state = new_root(tmp_path, "al2")
    before = (root / "etc/ssh/sshd_config").read_text()
    run = run_functions(
        root, "al2", 1, stub_bin, state, ["cis_5_3_10"], extra_env={"STUB_FAIL": "sshd"}
    )
    assert run.lines["5.3.10"].startswith("failed (sshd rejects the new configuration")
    assert (root / "etc/ssh/sshd_config").read_text() == before


def test_visudo_rejecting_a_change_rolls_it_back(tmp_path: Path, stub_bin: Path) -> None:
    root, state = new_root(tmp_path, "al2023")
    run = run_functions(
        root, "al2023", 1, stub_bin, state, ["cis_4_3_2"], extra_env={"STUB_FAIL": "visudo"}
    )
    assert run.lines["4.3.2"].startswith("failed (visudo rejects")
    assert not (root / "etc/sudoers.d/50-cis-hardening").exists()


def test_authselect_profile_gets_features_not_file_edits(tmp_path: Path, stub_bin: Path) -> None:
    root, state = new_root(tmp_path, "al2023")
    conf = root / "etc/authselect/authselect.conf"
    conf.parent.mkdir(parents=True)
    conf.write_text("sssd\n")
    before = (root / "etc/pam.d/system-auth").read_text()
    run = run_functions(root, "al2023", 1, stub_bin, state, ["cis_4_4_2", "cis_4_5_3"])
    assert run.returncode == 0, run.stderr
    assert conf.read_text().splitlines() == ["sssd", "with-faillock", "with-pwhistory"]
    assert "authselect apply-changes" in run.calls
    assert (root / "etc/pam.d/system-auth").read_text() == before
    assert "remember = 5" in (root / "etc/security/pwhistory.conf").read_text()


def test_aarch64_audit_rules_use_only_its_syscalls(tmp_path: Path, stub_bin: Path) -> None:
    root, state = new_root(tmp_path, "al2023")
    fns = ["cis_5_2_3_7", "cis_5_2_3_9", "cis_5_2_3_13", "cis_5_2_3_19"]
    run = run_functions(root, "al2023", 2, stub_bin, state, fns, extra_env={"CIS_ARCH": "aarch64"})
    assert run.returncode == 0, run.stderr
    rules = "\n".join(p.read_text() for p in sorted((root / "etc/audit/rules.d").glob("50-cis-*")))
    assert "arch=b32" not in rules
    for name in ("open", "creat", "chmod", "chown", "unlink", "rename", "create_module"):
        assert not re.search(rf"[ ,]{name}[ ,]", rules), name
    assert "-S openat,truncate,ftruncate -F exit=-EACCES" in rules


def test_wrong_platform_is_refused(tmp_path: Path, stub_bin: Path) -> None:
    root, state = new_root(tmp_path, "al2")
    run = harden(root, "al2023", 1, stub_bin, state)
    assert run.returncode == 2
    assert "does not match" in run.stderr
    assert run.stdout == ""


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["--platform", "al2023"],
        ["--platform", "rhel9", "--level", "1"],
        ["--platform", "al2", "--level", "3"],
        ["--bogus"],
    ],
)
def test_invalid_arguments_exit_2(args: list[str]) -> None:
    assert RUNNER_KIND is not None
    proc = subprocess.run(["bash", str(HARDEN), *args], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "usage: cis-harden.sh --platform al2023|al2 --level 1|2" in proc.stderr


def test_scripts_run_under_bash_without_gnu_extensions_of_bash_5() -> None:
    """AL2 ships bash 4.2: the scripts avoid namerefs, negative indices and ${x@Q}."""
    text = "\n".join(
        line
        for path in (HARDEN.parent / "cis").rglob("*.sh")
        for line in path.read_text().splitlines()
        if not line.lstrip().startswith("#")
    )
    assert not re.search(r"local -n |declare -n |\$\{[A-Za-z_]+\[-1\]\}|@Q\}|\bwait -n\b", text)
    assert shutil.which("bash")
