"""The Packer templates as data (python-hcl2), plus `packer fmt -check` / `packer validate`.

Debian's packer 1.6.6 cannot validate the production template (required_plugins,
metadata_options, imds_support, deprecate_at), so its security properties are asserted here;
the local template is validated by the real binary and must write the same tags.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from _packer_hcl import (
    LOCAL_TEMPLATE,
    PACKER_DIR,
    PRODUCTION_FILES,
    VAR_FILES,
    Evaluator,
    load,
    locals_of,
    merged,
    post_processors,
    provisioners,
    source,
    variables,
)

from pipeline import catalog
from pipeline.catalog import Platform
from pipeline.packer import (
    _REQUIRED_CUSTOM_DATA,
    BENCHMARKS,
    BUILT_BY,
    RESERVED_TAG_PREFIX,
    Arch,
    BuildSpec,
    provenance_tags,
)

PACKER = shutil.which("packer")
needs_packer = pytest.mark.skipif(PACKER is None, reason="packer binary not installed")
COMBOS = [(p, a) for p in Platform for a in Arch]


@pytest.fixture(scope="module")
def prod() -> dict[str, list[Any]]:
    return merged(PRODUCTION_FILES)


@pytest.fixture(scope="module")
def local() -> dict[str, list[Any]]:
    return merged([LOCAL_TEMPLATE])


def _default(doc: dict[str, list[Any]], ref: str) -> Any:
    """The default of the variable a value like ``${var.x}`` refers to."""
    match = re.fullmatch(r"\$\{var\.(\w+)\}", ref)
    assert match, f"expected a plain variable reference, got {ref!r}"
    return variables(doc)[match.group(1)]["default"]


def _spec(platform: Platform, arch: Arch, *, is_local: bool) -> BuildSpec:
    return BuildSpec(
        platform=platform,
        arch=arch,
        k8s_version="1.32",
        level=2,
        run_id="20261126T120000Z-abc123",
        region="us-east-1",
        manifest_path=Path("/tmp/m.json"),
        git_commit="0123456789abcdef0123456789abcdef01234567",
        source_ami="ami-0abc1234",
        local=is_local,
        endpoint="http://127.0.0.1:5000" if is_local else None,
    )


def _values(spec: BuildSpec) -> dict[str, Any]:
    values: dict[str, Any] = dict(spec.variables())
    values["hardening_level"] = int(values["hardening_level"])
    values.update(platform=spec.platform.short, architecture=spec.arch.value)
    return values


# --- versions.pkr.hcl -------------------------------------------------------------------------


def test_required_plugins_amazon_is_declared() -> None:
    (block,) = load(PACKER_DIR / "versions.pkr.hcl")["packer"]
    (plugins,) = block["required_plugins"]
    assert plugins["amazon"]["source"] == "github.com/hashicorp/amazon"
    # pinned exactly: test_plugin_schema checks the template against that version's schema
    assert re.fullmatch(r"\d+\.\d+\.\d+", plugins["amazon"]["version"])
    assert block["required_version"] == ">= 1.10.0"


# --- the build instance -------------------------------------------------------------------


def test_build_instance_requires_imdsv2_with_small_hop_limit(prod: dict[str, list[Any]]) -> None:
    (meta,) = source(prod)["metadata_options"]
    assert meta["http_tokens"] == "required"
    assert meta["http_endpoint"] == "enabled"
    assert _default(prod, meta["http_put_response_hop_limit"]) in (1, 2)
    (rule,) = variables(prod)["imds_hop_limit"]["validation"]
    assert rule["condition"] == "${contains([1, 2], var.imds_hop_limit)}"


def test_session_manager_is_the_default_and_ssh_never_public(prod: dict[str, list[Any]]) -> None:
    src = source(prod)
    assert src["communicator"] == "ssh"
    assert _default(prod, src["ssh_interface"]) == "session_manager"
    (rule,) = variables(prod)["ssh_interface"]["validation"]
    assert "public" not in rule["condition"]
    assert _default(prod, src["associate_public_ip_address"]) is False
    cidrs = _default(prod, src["temporary_security_group_source_cidrs"])
    assert cidrs and not {"0.0.0.0/0", "::/0"} & set(cidrs)
    (cidr_rule,) = variables(prod)["ssh_source_cidrs"]["validation"]
    assert "0.0.0.0/0" in cidr_rule["condition"]


def test_instance_profile_is_named_or_temporary_with_session_manager_only(
    prod: dict[str, list[Any]],
) -> None:
    src = source(prod)
    # the pre-created profile policies/iam/build.json may pass (no iam:CreateRole for builds)
    assert _default(prod, src["iam_instance_profile"]) == "eks-cis-ami-pipeline-packer"
    (dynamic,) = src["dynamic"]
    doc = dynamic["temporary_iam_instance_profile_policy_document"]
    assert doc["for_each"] == '${var.iam_instance_profile == "" ? [1] : []}'
    (content,) = doc["content"]
    actions = {a for st in content["Statement"] for a in st["Action"]}
    assert "ssm:UpdateInstanceInformation" in actions
    assert all(a.startswith(("ssm:", "ssmmessages:")) for a in actions)
    assert not any(a.endswith("*") for a in actions)


def test_run_tags_carry_the_run_id(prod: dict[str, list[Any]]) -> None:
    src = source(prod)
    assert src["run_tags"] == src["run_volume_tags"] == "${local.run_tags}"
    assert locals_of(prod)["run_tags"]["cis-ami:run-id"] == "${var.run_id}"


@pytest.mark.parametrize("mapping", ["launch_block_device_mappings", "ami_block_device_mappings"])
def test_volumes_are_encrypted_gp3(prod: dict[str, list[Any]], mapping: str) -> None:
    devices = source(prod)[mapping]
    assert devices
    for dev in devices:
        assert dev["encrypted"] is True, dev
        assert dev["volume_type"] == "gp3"
        assert dev["iops"] >= 3000 and dev["throughput"] >= 125
        assert dev["delete_on_termination"] is True
        if mapping == "launch_block_device_mappings":
            assert dev["kms_key_id"] == "${var.kms_key_id}"
        else:  # documented for launch mappings only; EC2 rejects it at registration (packer#6212)
            assert "kms_key_id" not in dev


@pytest.mark.parametrize("mapping", ["launch_block_device_mappings", "ami_block_device_mappings"])
def test_second_volume_for_the_cis_partitions(prod: dict[str, list[Any]], mapping: str) -> None:
    (xvdb,) = [d for d in source(prod)[mapping] if d["device_name"] == "/dev/xvdb"]
    assert _default(prod, xvdb["volume_size"]) == 64


# --- the AMI ------------------------------------------------------------------------------------


def test_ami_is_encrypted_imdsv2_only_and_deprecated(prod: dict[str, list[Any]]) -> None:
    """Encrypted by its launch volumes (their snapshots keep the key); no AMI-level copy, which
    build.json does not allow (issue 21: the copy's snapshots are created untagged)."""
    src = source(prod)
    for absent in ("encrypt_boot", "kms_key_id", "ami_regions", "region_kms_key_ids"):
        assert absent not in src, absent
    for device in src["launch_block_device_mappings"]:
        assert device["encrypted"] is True
        assert device["kms_key_id"] == "${var.kms_key_id}"
    assert src["imds_support"] == "v2.0"
    assert src["deprecate_at"] == "${local.deprecate_at}"
    assert "var.ami_deprecation_days" in locals_of(prod)["deprecate_at"]
    assert variables(prod)["ami_deprecation_days"]["default"] == 90


def test_ami_and_snapshots_carry_the_provenance_tags(prod: dict[str, list[Any]]) -> None:
    src = source(prod)
    assert src["tags"] == src["snapshot_tags"] == "${local.provenance_tags}"


@pytest.mark.parametrize(("platform", "arch"), COMBOS, ids=lambda v: str(v))
@pytest.mark.parametrize("which", ["production", "local"])
def test_rendered_tags_equal_pipeline_provenance_tags(
    prod: dict[str, list[Any]],
    local: dict[str, list[Any]],
    which: str,
    platform: Platform,
    arch: Arch,
) -> None:
    spec = _spec(platform, arch, is_local=which == "local")
    doc = prod if which == "production" else local
    rendered = Evaluator(doc, _values(spec)).render(locals_of(doc)["provenance_tags"])
    assert rendered == provenance_tags(spec)
    assert rendered["cis-ami:built-by"] == BUILT_BY
    assert rendered["Name"] == spec.ami_name


def test_local_and_production_tags_agree(
    prod: dict[str, list[Any]], local: dict[str, list[Any]]
) -> None:
    """The local build is representative: same tags and expressions, only cis-ami:local differs."""
    p, lo = locals_of(prod), locals_of(local)
    for name in ("platform_names", "benchmarks", "image_name", "ami_name", "run_tags"):
        assert p[name] == lo[name], name
    prod_tags, local_tags = dict(p["provenance_tags"]), dict(lo["provenance_tags"])
    assert (prod_tags.pop("cis-ami:local"), local_tags.pop("cis-ami:local")) == ("false", "true")
    assert prod_tags == local_tags
    prod_data, local_data = dict(p["manifest_data"]), dict(lo["manifest_data"])
    assert (prod_data.pop("local"), local_data.pop("local")) == ("false", "true")
    assert prod_data == local_data
    assert source(local)["tags"] == source(local)["snapshot_tags"] == "${local.provenance_tags}"
    assert source(local)["run_tags"] == "${local.run_tags}"


def test_benchmark_labels_match_the_catalogue(
    prod: dict[str, list[Any]], local: dict[str, list[Any]]
) -> None:
    want = {p.short: catalog.load(p).label for p in Platform}
    assert locals_of(prod)["benchmarks"] == locals_of(local)["benchmarks"] == want
    assert {p.short: label for p, label in BENCHMARKS.items()} == want
    assert locals_of(prod)["platform_names"] == {p.short: p.value for p in Platform}


def test_no_reserved_cis_tag_keys(prod: dict[str, list[Any]], local: dict[str, list[Any]]) -> None:
    for doc in (prod, local):
        for tags in ("provenance_tags", "run_tags"):
            keys = list(locals_of(doc)[tags])
            assert not [k for k in keys if k.startswith(RESERVED_TAG_PREFIX)], keys
            # cis-pipeline:* are the ownership and heartbeat tags `invoke reap` reads
            assert all(k == "Name" or k.startswith(("cis-ami:", "cis-pipeline:")) for k in keys), (
                keys
            )


def test_no_credentials_or_key_material() -> None:
    forbidden = re.compile(
        r"aws_access_key|aws_secret_key|secret_key\s*=|\btoken\s*=|ssh_private_key_file|"
        r"ssh_password|ssh_keypair_name|PRIVATE KEY|AKIA[0-9A-Z]{16}"
    )
    files = [*PRODUCTION_FILES, LOCAL_TEMPLATE, *VAR_FILES]
    for path in files:
        hits = forbidden.findall(path.read_text(encoding="utf-8"))
        assert not hits, f"{path}: {hits}"


def test_manifest_post_processor_records_provenance(
    prod: dict[str, list[Any]], local: dict[str, list[Any]]
) -> None:
    for doc in (prod, local):
        ((kind, body),) = post_processors(doc)
        assert kind == "manifest"
        assert body["output"] == "${var.manifest_path}"
        assert body["custom_data"] == "${local.manifest_data}"
        assert set(_REQUIRED_CUSTOM_DATA) <= set(locals_of(doc)["manifest_data"])


# --- provisioning -------------------------------------------------------------------------------


def test_production_uploads_updates_hardens_then_cleans_up(prod: dict[str, list[Any]]) -> None:
    steps = provisioners(prod)
    kinds = [kind for kind, _ in steps]
    assert kinds == ["shell", "file", "shell", "shell", "shell"]
    upload = steps[1][1]
    assert upload["source"] == "${path.root}/scripts/"
    assert steps[2][1]["script"] == "${path.root}/scripts/security-updates.sh"
    (harden,) = steps[3][1]["inline"]
    assert harden.startswith(
        "sudo CIS_ROOT=/ CIS_AUDIT_FULL_ACTION=${var.audit_full_action} "
        "CIS_SELINUX_MODE=${var.selinux_mode} bash "
    )
    assert harden.endswith(
        "/cis-harden.sh --platform ${var.platform} --level ${var.hardening_level}"
    )
    cleanup = steps[4][1]
    assert cleanup["script"] == "${path.root}/scripts/cleanup.sh"
    assert "sudo" in cleanup["execute_command"]


def test_data_volume_size_is_a_variable_big_enough_for_the_layout(
    prod: dict[str, list[Any]],
) -> None:
    var = variables(prod)["data_volume_size"]
    assert var["default"] == 64 and "nofail" in var["description"]
    (check,) = var["validation"]
    assert check["condition"] == "${var.data_volume_size >= 32}"


def test_audit_full_action_is_an_explicit_choice_that_does_not_halt(
    prod: dict[str, list[Any]],
) -> None:
    var = variables(prod)["audit_full_action"]
    assert var["default"] == "suspend"
    assert "halt" in var["description"] and "5.2.2.3" in var["description"]
    (check,) = var["validation"]
    assert '["suspend", "single", "halt"]' in check["condition"]


def test_local_template_stands_in_without_remote_provisioning(local: dict[str, list[Any]]) -> None:
    src = source(local)
    assert src["communicator"] == "none"
    assert src["custom_endpoint_ec2"] == "${var.ec2_endpoint}"
    for flag in ("skip_credential_validation", "skip_metadata_api_check", "skip_region_validation"):
        assert src[flag] is True
    assert [kind for kind, _ in provisioners(local)] == ["shell-local"]
    assert "encrypt_boot" not in src  # as in production: the launch volumes are encrypted


def test_local_template_has_the_production_volumes(
    prod: dict[str, list[Any]], local: dict[str, list[Any]]
) -> None:
    for mapping in ("launch_block_device_mappings", "ami_block_device_mappings"):
        assert source(local)[mapping] == source(prod)[mapping]


# --- variables and var files --------------------------------------------------------------------


@pytest.mark.parametrize("path", VAR_FILES, ids=lambda p: p.name)
def test_var_file_matches_its_name(
    path: Path, prod: dict[str, list[Any]], local: dict[str, list[Any]]
) -> None:
    values = load(path)
    assert f"{values['platform']}-{values['architecture']}.pkrvars.hcl" == path.name
    family = values["instance_type"].split(".")[0]
    assert ("g" in family[2:]) == (values["architecture"] == "arm64"), values["instance_type"]
    assert set(values) <= set(variables(prod)) and set(values) <= set(variables(local))


def test_one_var_file_per_platform_and_arch() -> None:
    assert sorted(p.name for p in VAR_FILES) == sorted(
        f"{p.short}-{a.value}.pkrvars.hcl" for p, a in COMBOS
    )


@pytest.mark.parametrize("is_local", [False, True], ids=["production", "local"])
def test_pipeline_vars_are_declared(
    is_local: bool, prod: dict[str, list[Any]], local: dict[str, list[Any]]
) -> None:
    doc = local if is_local else prod
    spec = _spec(Platform.AMAZON_LINUX_2023, Arch.X86_64, is_local=is_local)
    assert set(spec.variables()) <= set(variables(doc))


# --- the real binary ----------------------------------------------------------------------------


@needs_packer
@pytest.mark.parametrize("directory", ["", "vars", "local"], ids=["packer", "vars", "local"])
def test_packer_fmt_check(directory: str) -> None:
    # 1.6.6 has no -recursive: check each directory.
    done = subprocess.run(
        [str(PACKER), "fmt", "-check", "-diff", str(PACKER_DIR / directory)],
        capture_output=True,
        text=True,
        env={"CHECKPOINT_DISABLE": "1", "PATH": "/usr/bin:/bin"},
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


@needs_packer
@pytest.mark.parametrize("var_file", VAR_FILES, ids=lambda p: p.stem)
def test_packer_validate_local_template(var_file: Path) -> None:
    version = "1.32" if var_file.name.startswith("al2-") else "1.33"
    done = subprocess.run(
        [
            str(PACKER),
            "validate",
            f"-var-file={var_file}",
            *("-var", f"kubernetes_version={version}", "-var", "source_ami=ami-ekslinux"),
            *("-var", "run_id=validate", "-var", "ec2_endpoint=http://127.0.0.1:1"),
            str(LOCAL_TEMPLATE),
        ],
        capture_output=True,
        text=True,
        env={"CHECKPOINT_DISABLE": "1", "PATH": "/usr/bin:/bin"},
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Warning" not in done.stdout + done.stderr


# --- scripts ------------------------------------------------------------------------------------

MY_SCRIPTS = [PACKER_DIR / "scripts" / "cleanup.sh", PACKER_DIR / "local" / "stand-in.sh"]


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck not installed")
def test_shellcheck_clean() -> None:
    done = subprocess.run(
        ["shellcheck", "-f", "gcc", *map(str, MY_SCRIPTS)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout


def _tree(root: Path) -> None:
    for rel in (
        "etc/ssh/ssh_host_ed25519_key",
        "etc/ssh/ssh_host_rsa_key.pub",
        "etc/ssh/sshd_config",
        "root/.ssh/authorized_keys",
        "home/ec2-user/.ssh/authorized_keys",
        "home/ec2-user/.bash_history",
        "var/lib/cloud/instances/i-0abc/user-data.txt",
        "opt/cis-ami-build/cis-harden.sh",
    ):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text("x\n")
    (root / "etc/machine-id").write_text("0123456789abcdef\n")


def _cleanup(root: Path, staging: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(MY_SCRIPTS[0])],
        env={"CLEANUP_ROOT": str(root), "CIS_AMI_STAGING": staging, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=False,
    )


def test_cleanup_removes_keys_and_cloud_init_state(tmp_path: Path) -> None:
    _tree(tmp_path)
    done = _cleanup(tmp_path, "/opt/cis-ami-build")
    assert done.returncode == 0, done.stdout + done.stderr
    left = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    assert left == ["etc/machine-id", "etc/ssh/sshd_config"]
    assert (tmp_path / "etc/machine-id").read_text() == ""


def test_cleanup_refuses_an_unexpected_staging_path(tmp_path: Path) -> None:
    _tree(tmp_path)
    done = _cleanup(tmp_path, "/etc")
    assert done.returncode == 2
    assert (tmp_path / "etc/ssh/sshd_config").exists()
