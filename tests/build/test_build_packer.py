"""pipeline.packer as data: command lines, tags, manifests, machine-readable lines, input checks."""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import pytest

from pipeline.catalog import Platform
from pipeline.errors import ConfigError
from pipeline.packer import (
    PACKER_DIR,
    Arch,
    BuildSpec,
    build_argv,
    build_env,
    check_k8s_version,
    init_argv,
    last_run_uuid,
    parse_artifact_id,
    parse_manifest,
    provenance_tags,
    ui_lines,
    validate_argv,
)

CASES = Path(__file__).resolve().parents[1] / "cases" / "build" / "manifest"
AL2023, AL2 = Platform.AMAZON_LINUX_2023, Platform.AMAZON_LINUX_2
SHA = "0123456789abcdef0123456789abcdef01234567"


def spec(**changes: Any) -> BuildSpec:
    base = BuildSpec(
        platform=AL2023,
        arch=Arch.X86_64,
        k8s_version="1.33",
        level=1,
        run_id="20261126T120000Z-abc123",
        region="us-east-1",
        manifest_path=Path("/out/al2023-x86_64.manifest.json"),
        git_commit=SHA,
        source_ami="ami-0base",
    )
    return replace(base, **changes)


# --- build_argv -------------------------------------------------------------------------------

COMMON = [
    "-var",
    "region=us-east-1",
    "-var",
    "source_ami=ami-0base",
]

ARGV_CASES: list[tuple[str, dict[str, Any], list[str]]] = [
    (
        "production_al2023_x86_64",
        {},
        [
            "packer",
            "build",
            "-machine-readable",
            "-color=false",
            f"-var-file={PACKER_DIR}/vars/al2023-x86_64.pkrvars.hcl",
            *COMMON,
            *("-var", "kubernetes_version=1.33", "-var", "hardening_level=1"),
            *("-var", "run_id=20261126T120000Z-abc123", "-var", f"git_commit={SHA}"),
            *("-var", "manifest_path=/out/al2023-x86_64.manifest.json"),
            str(PACKER_DIR),
        ],
    ),
    (
        "local_al2_arm64_level2",
        {
            "platform": AL2,
            "arch": Arch.ARM64,
            "k8s_version": "1.32",
            "level": 2,
            "local": True,
            "endpoint": "http://127.0.0.1:5000",
            "manifest_path": Path("out/al2-arm64.manifest.json"),
        },
        [
            "packer",
            "build",
            "-machine-readable",
            "-color=false",
            f"-var-file={PACKER_DIR}/vars/al2-arm64.pkrvars.hcl",
            *COMMON,
            *("-var", "kubernetes_version=1.32", "-var", "hardening_level=2"),
            *("-var", "run_id=20261126T120000Z-abc123", "-var", f"git_commit={SHA}"),
            *("-var", "manifest_path=out/al2-arm64.manifest.json"),
            *("-var", "ec2_endpoint=http://127.0.0.1:5000"),
            f"{PACKER_DIR}/local/eks-cis-local.pkr.hcl",
        ],
    ),
    (
        "production_extra_vars_last",
        {"extra_vars": (("kms_key_id", "alias/cis-ami"), ("subnet_id", "subnet-0abc"))},
        [
            "packer",
            "build",
            "-machine-readable",
            "-color=false",
            f"-var-file={PACKER_DIR}/vars/al2023-x86_64.pkrvars.hcl",
            *COMMON,
            *("-var", "kubernetes_version=1.33", "-var", "hardening_level=1"),
            *("-var", "run_id=20261126T120000Z-abc123", "-var", f"git_commit={SHA}"),
            *("-var", "manifest_path=/out/al2023-x86_64.manifest.json"),
            *("-var", "kms_key_id=alias/cis-ami", "-var", "subnet_id=subnet-0abc"),
            str(PACKER_DIR),
        ],
    ),
]


@pytest.mark.parametrize(
    ("changes", "want"), [c[1:] for c in ARGV_CASES], ids=[c[0] for c in ARGV_CASES]
)
def test_build_argv(changes: dict[str, Any], want: list[str]) -> None:
    assert build_argv(spec(**changes)) == want


def test_validate_and_init_argv() -> None:
    prod, local = spec(), spec(local=True, endpoint="http://127.0.0.1:1")
    assert validate_argv(prod)[:2] == ["packer", "validate"]
    assert validate_argv(prod)[2:] == build_argv(prod)[4:]
    assert init_argv(prod) == ["packer", "init", str(PACKER_DIR)]
    assert init_argv(local) is None
    assert build_argv(prod, packer="/opt/packer")[0] == "/opt/packer"


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"source_ami": None}, "no source AMI resolved yet"),
        ({"extra_vars": (("run_id", "x"),)}, "packer variable 'run_id' is set by the pipeline"),
    ],
    ids=["unresolved_source_ami", "extra_var_overrides_pipeline_var"],
)
def test_build_argv_refuses(changes: dict[str, Any], error: str) -> None:
    with pytest.raises(ConfigError, match=error):
        build_argv(spec(**changes))


# --- BuildSpec / input checks -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"platform": AL2, "k8s_version": "1.33"}, r"--k8s-version 1\.33: EKS publishes no Amazon"),
        ({"k8s_version": "1.3x"}, r"--k8s-version '1\.3x'"),
        ({"k8s_version": "2.0"}, r"--k8s-version '2\.0'"),
        ({"level": 3}, "--level 3"),
        ({"level": True}, "--level True"),
        ({"run_id": "bad run id"}, "run ID 'bad run id'"),
        ({"run_id": "-leading-dash"}, "run ID"),
        ({"region": "mars"}, "--region 'mars'"),
        ({"source_ami": "i-123"}, "not an AMI ID"),
        ({"local": True, "endpoint": None}, "--local needs the local AWS endpoint"),
    ],
    ids=lambda v: str(v) if isinstance(v, str) else None,
)
def test_build_spec_rejects(changes: dict[str, Any], error: str) -> None:
    with pytest.raises(ConfigError, match=error):
        spec(**changes)


@pytest.mark.parametrize(
    ("platform", "version", "ok"),
    [
        (AL2023, "1.33", True),
        (AL2023, "1.35", True),
        (AL2, "1.32", True),
        (AL2, "1.29", True),
        (AL2, "1.33", False),
        (AL2, "1.100", False),
        (AL2023, " 1.34 ", True),
    ],
)
def test_check_k8s_version(platform: Platform, version: str, ok: bool) -> None:
    if ok:
        assert check_k8s_version(platform, version) == version.strip()
    else:
        with pytest.raises(ConfigError, match="--k8s-version"):
            check_k8s_version(platform, version)


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("x86_64", Arch.X86_64),
        ("amd64", Arch.X86_64),
        ("ARM64", Arch.ARM64),
        ("aarch64", Arch.ARM64),
    ],
)
def test_arch_parse(text: str, want: Arch) -> None:
    assert Arch.parse(text) is want


def test_arch_parse_names_the_argument() -> None:
    with pytest.raises(ConfigError, match="--arch 'ppc64le'"):
        Arch.parse("ppc64le")


def test_names() -> None:
    s = spec(platform=AL2, arch=Arch.ARM64, k8s_version="1.32", level=2)
    assert s.name == "al2-arm64"
    assert s.ami_name == "eks-cis-al2-arm64-k8s1.32-l2-20261126T120000Z-abc123"
    assert s.var_file == PACKER_DIR / "vars" / "al2-arm64.pkrvars.hcl"


# --- provenance tags ----------------------------------------------------------------------------

TAG_CASES = [
    (
        "production_al2023",
        {},
        {
            "Name": "eks-cis-al2023-x86_64-k8s1.33-l1-20261126T120000Z-abc123",
            "cis-ami:source-ami": "ami-0base",
            "cis-ami:kubernetes-version": "1.33",
            "cis-ami:platform": "AMAZON_LINUX_2023",
            "cis-ami:architecture": "x86_64",
            "cis-ami:hardening-level": "1",
            "cis-ami:benchmark": "CIS Amazon Linux 2023 Benchmark v1.0.0",
            "cis-ami:git-commit": SHA,
            "cis-ami:run-id": "20261126T120000Z-abc123",
            "cis-ami:built-by": "eks-cis-ami-pipeline",
            "cis-ami:local": "false",
            "cis-pipeline:managed": "true",
        },
    ),
    (
        "local_al2_arm64_level2",
        {
            "platform": AL2,
            "arch": Arch.ARM64,
            "k8s_version": "1.32",
            "level": 2,
            "local": True,
            "endpoint": "http://127.0.0.1:5000",
            "git_commit": "unknown",
        },
        {
            "Name": "eks-cis-al2-arm64-k8s1.32-l2-20261126T120000Z-abc123",
            "cis-ami:source-ami": "ami-0base",
            "cis-ami:kubernetes-version": "1.32",
            "cis-ami:platform": "AMAZON_LINUX_2",
            "cis-ami:architecture": "arm64",
            "cis-ami:hardening-level": "2",
            "cis-ami:benchmark": "CIS Amazon Linux 2 Benchmark v2.0.0",
            "cis-ami:git-commit": "unknown",
            "cis-ami:run-id": "20261126T120000Z-abc123",
            "cis-ami:built-by": "eks-cis-ami-pipeline",
            "cis-ami:local": "true",
            "cis-pipeline:managed": "true",
        },
    ),
]


@pytest.mark.parametrize(
    ("changes", "want"), [c[1:] for c in TAG_CASES], ids=[c[0] for c in TAG_CASES]
)
def test_provenance_tags(changes: dict[str, Any], want: dict[str, str]) -> None:
    tags = provenance_tags(spec(**changes))
    assert tags == want
    assert not [k for k in tags if k.startswith("cis:")]


# --- manifests ----------------------------------------------------------------------------------


def _as_data(build: Any) -> dict[str, Any]:
    data = asdict(build)
    return {
        "ami_id": data["ami_id"],
        "region": data["region"],
        "platform": str(data["platform"]),
        "arch": str(data["arch"]),
        "k8s_version": data["k8s_version"],
        "level": data["level"],
        "source_ami": data["source_ami"],
        "run_id": data["run_id"],
        "local": data["local"],
        "packer_run_uuid": data["packer_run_uuid"],
    }


@pytest.mark.parametrize("case", sorted(CASES.glob("*.json")), ids=lambda p: p.stem)
def test_parse_manifest(case: Path) -> None:
    data = json.loads(case.read_text(encoding="utf-8"))
    text = json.dumps(data["manifest"])
    if "error" in data:
        with pytest.raises(ConfigError) as err:
            parse_manifest(text, data.get("run_uuid"), path=case)
        assert data["error"] in str(err.value)
        assert str(case) in str(err.value)
        return
    got = [_as_data(b) for b in parse_manifest(text, data.get("run_uuid"), path=case)]
    assert got == data["expect"], (
        f"GOT {json.dumps(got, indent=1)}\nWANT {json.dumps(data['expect'], indent=1)}"
    )


def test_parse_manifest_keeps_the_path_and_rejects_non_json(tmp_path: Path) -> None:
    case = json.loads((CASES / "single_build.json").read_text(encoding="utf-8"))
    (build,) = parse_manifest(json.dumps(case["manifest"]), path=tmp_path / "m.json")
    assert build.manifest_path == tmp_path / "m.json"
    assert build.name == "al2023-x86_64"
    with pytest.raises(ConfigError, match="not JSON"):
        parse_manifest("{", path=tmp_path / "m.json")


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ('{"last_run_uuid": "u-1", "builds": []}', "u-1"),
        ('{"builds": []}', None),
        ("not json", None),
        ("[]", None),
    ],
)
def test_last_run_uuid(text: str, want: str | None) -> None:
    assert last_run_uuid(text) == want


@pytest.mark.parametrize(
    ("artifact", "want"),
    [
        ("us-east-1:ami-0abc", [("us-east-1", "ami-0abc")]),
        (
            "us-east-1:ami-900c66b16193a7669,us-west-2:ami-e0c30b544d486f2b4",
            [("us-east-1", "ami-900c66b16193a7669"), ("us-west-2", "ami-e0c30b544d486f2b4")],
        ),
        (
            "us-east-1:ami-1%!(PACKER_COMMA)eu-central-1:ami-2",
            [("us-east-1", "ami-1"), ("eu-central-1", "ami-2")],
        ),
    ],
)
def test_parse_artifact_id(artifact: str, want: list[tuple[str, str]]) -> None:
    assert parse_artifact_id(artifact) == want


@pytest.mark.parametrize("artifact", ["", "ami-0abc", "us-east-1:snap-0abc", "us-east-1:ami-1,"])
def test_parse_artifact_id_rejects(artifact: str) -> None:
    with pytest.raises(ConfigError):
        parse_artifact_id(artifact)


# --- machine-readable output and environment ----------------------------------------------------


@pytest.mark.parametrize(
    ("line", "want"),
    [
        (
            "1795702604,,ui,say,==> eks-cis.amazon-ebs.eks-cis: Stopping the source instance...",
            ["==> eks-cis.amazon-ebs.eks-cis: Stopping the source instance..."],
        ),
        (
            "1795702604,,ui,message,    eks-cis: cleanup: no host keys%!(PACKER_COMMA) no keys",
            ["    eks-cis: cleanup: no host keys, no keys"],
        ),
        (
            "1795702604,,ui,say,--> eks-cis: AMIs were created:\\nus-east-1: ami-8dae\\n",
            ["--> eks-cis: AMIs were created:", "us-east-1: ami-8dae"],
        ),
        ("1795702604,,ui,error,Build 'x' errored: boom", ["Build 'x' errored: boom"]),
        ("1795702604,eks-cis.amazon-ebs.eks-cis,artifact,0,id,us-east-1:ami-8dae", []),
        ("1795702604,eks-cis.amazon-ebs.eks-cis,artifact-count,2", []),
        ("panic: plain text from a crashing packer", ["panic: plain text from a crashing packer"]),
        ("", []),
    ],
)
def test_ui_lines(line: str, want: list[str]) -> None:
    assert ui_lines(line) == want


def test_build_env_local_uses_environment_credentials_or_dummies() -> None:
    local = spec(local=True, endpoint="http://127.0.0.1:1")
    env = build_env(local, {"PATH": "/bin", "AWS_PROFILE": "prod"})
    assert env == {
        "PATH": "/bin",
        "CHECKPOINT_DISABLE": "1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }
    kept = build_env(local, {"AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s"})
    assert (kept["AWS_ACCESS_KEY_ID"], kept["AWS_SECRET_ACCESS_KEY"]) == ("k", "s")


def test_build_env_production_keeps_the_profile() -> None:
    env = build_env(spec(), {"AWS_PROFILE": "ci"})
    assert env == {"AWS_PROFILE": "ci", "CHECKPOINT_DISABLE": "1"}
