"""Pure Packer glue: build specs, command lines, provenance tags and the manifest (no I/O here).

Two templates: the production one is the ``packer/`` directory (current Packer, ``packer init``);
``packer/local/eks-cis-local.pkr.hcl`` builds against the local AWS with Debian's packer 1.6.6.
The AMI ID comes from the ``manifest`` post-processor's file, never from Packer's log.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from pipeline.catalog import Platform
from pipeline.errors import ConfigError
from pipeline.runs import check_run_id
from pipeline.tags import AMI_TAG_PREFIX, CIS_TAG_PREFIX, MANAGED_TAG, MANAGED_VALUE

BUILT_BY = "eks-cis-ami-pipeline"
TAG_PREFIX = AMI_TAG_PREFIX
# Reserved for validation outcomes written after the scan; the build never writes them (and its
# IAM policy does not let it).
RESERVED_TAG_PREFIX = CIS_TAG_PREFIX

# The benchmark each platform is hardened and scanned against (catalog.load(p).label; the
# templates' local.benchmarks repeat it; tests/build/test_templates.py keeps all three equal).
BENCHMARKS: Mapping[Platform, str] = {
    Platform.AMAZON_LINUX_2023: "CIS Amazon Linux 2023 Benchmark v1.0.0",
    Platform.AMAZON_LINUX_2: "CIS Amazon Linux 2 Benchmark v2.0.0",
}

# Default Kubernetes version per platform. EKS published its last Amazon Linux 2 AMIs for 1.32
# (amazon-eks-ami doc/usage/al2.md), so AL2 cannot share the AL2023 default.
DEFAULT_K8S_VERSION: Mapping[Platform, str] = {
    Platform.AMAZON_LINUX_2023: "1.33",
    Platform.AMAZON_LINUX_2: "1.32",
}
AL2_LAST_K8S_MINOR = 32

PACKER_DIR = Path(__file__).resolve().parent.parent / "packer"
LOCAL_TEMPLATE = Path("local") / "eks-cis-local.pkr.hcl"

_K8S_VERSION = re.compile(r"^1\.([0-9]{1,3})$")
_AMI_ID = re.compile(r"^ami-[0-9a-z]+$")
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-[0-9]+$")
_PACKER_COMMA = "%!(PACKER_COMMA)"


class Arch(StrEnum):
    """CPU architecture, spelled as EC2 and the EKS SSM parameters spell it."""

    X86_64 = "x86_64"
    ARM64 = "arm64"

    @classmethod
    def parse(cls, value: str) -> Arch:
        """Accept ``x86_64``/``amd64``, ``arm64``/``aarch64``; else ConfigError naming --arch."""
        key = value.strip().lower()
        aliases = {"amd64": cls.X86_64, "x86-64": cls.X86_64, "aarch64": cls.ARM64}
        if key in aliases:
            return aliases[key]
        try:
            return cls(key)
        except ValueError:
            raise ConfigError(f"--arch {value!r}: choose x86_64 or arm64") from None


def check_k8s_version(platform: Platform, version: str) -> str:
    """Return ``version`` if EKS publishes optimized AMIs of ``platform`` for it.

    Raises ConfigError naming ``--k8s-version`` for a malformed version, and for Amazon Linux 2
    with Kubernetes >= 1.33 (EKS stopped publishing AL2 AMIs after 1.32).
    """
    match = _K8S_VERSION.fullmatch(version.strip())
    if not match:
        raise ConfigError(
            f"--k8s-version {version!r}: expected a Kubernetes minor version like 1.33"
        )
    if platform is Platform.AMAZON_LINUX_2 and int(match.group(1)) > AL2_LAST_K8S_MINOR:
        raise ConfigError(
            f"--k8s-version {version}: EKS publishes no Amazon Linux 2 AMIs for Kubernetes 1.33 "
            f"or later (the last is 1.{AL2_LAST_K8S_MINOR}); use --platform al2023 or "
            f"--k8s-version 1.{AL2_LAST_K8S_MINOR}"
        )
    return version.strip()


def check_level(level: int) -> int:
    """Return ``level`` if it is a CIS profile level (1 or 2); else ConfigError naming --level."""
    if level not in (1, 2) or isinstance(level, bool):
        raise ConfigError(f"--level {level!r}: the CIS hardening level must be 1 or 2")
    return level


@dataclass(frozen=True, slots=True)
class BuildSpec:
    """One image to build: what (platform, arch, Kubernetes version, level), where and as which run.

    ``source_ami`` is filled in by the build step from the EKS SSM parameter (``replace``).
    ``local`` selects the 1.6.6-valid local template and needs ``endpoint`` (the local EC2 URL).
    ``extra_vars`` are passed through as ``-var`` (e.g. ``kms_key_id``; the network's
    ``subnet_id``... are added by the build after its preflight).
    """

    platform: Platform
    arch: Arch
    k8s_version: str
    level: int
    run_id: str
    region: str
    manifest_path: Path
    git_commit: str = "unknown"
    source_ami: str | None = None
    local: bool = False
    endpoint: str | None = None
    packer_dir: Path = PACKER_DIR
    extra_vars: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        check_k8s_version(self.platform, self.k8s_version)
        check_level(self.level)
        check_run_id(self.run_id)
        if not _REGION.fullmatch(self.region):
            raise ConfigError(f"--region {self.region!r}: not an AWS region name")
        if self.source_ami is not None and not _AMI_ID.fullmatch(self.source_ami):
            raise ConfigError(f"source AMI {self.source_ami!r}: not an AMI ID")
        if self.local and not self.endpoint:
            raise ConfigError("--local needs the local AWS endpoint URL (none was given)")

    @property
    def name(self) -> str:
        """Short name for output prefixes, var files and manifest files: ``al2023-x86_64``."""
        return f"{self.platform.short}-{self.arch.value}"

    @property
    def image_name(self) -> str:
        """The AMI name without the run ID (``local.image_name`` in the templates)."""
        return (
            f"eks-cis-{self.platform.short}-{self.arch.value}-k8s{self.k8s_version}-l{self.level}"
        )

    @property
    def ami_name(self) -> str:
        """The AMI name (``local.ami_name`` in the templates)."""
        return f"{self.image_name}-{self.run_id}"

    @property
    def benchmark(self) -> str:
        return BENCHMARKS[self.platform]

    @property
    def log_path(self) -> Path:
        """Packer's output for this image, next to its manifest: ``al2023-x86_64.packer.log``."""
        return self.manifest_path.with_name(f"{self.name}.packer.log")

    @property
    def var_file(self) -> Path:
        return self.packer_dir / "vars" / f"{self.name}.pkrvars.hcl"

    @property
    def template(self) -> Path:
        """The local template file, or the production template directory."""
        return self.packer_dir / LOCAL_TEMPLATE if self.local else self.packer_dir

    def variables(self) -> dict[str, str]:
        """The ``-var`` values of this build, in stable order; ConfigError without a source AMI."""
        if self.source_ami is None:
            raise ConfigError(f"{self.name}: no source AMI resolved yet")
        values = {
            "region": self.region,
            "source_ami": self.source_ami,
            "kubernetes_version": self.k8s_version,
            "hardening_level": str(self.level),
            "run_id": self.run_id,
            "git_commit": self.git_commit,
            "manifest_path": str(self.manifest_path),
        }
        if self.local:
            values["ec2_endpoint"] = str(self.endpoint)
        for key, value in self.extra_vars:
            if key in values:
                raise ConfigError(f"{self.name}: packer variable {key!r} is set by the pipeline")
            values[key] = value
        return values


def _var_args(spec: BuildSpec) -> list[str]:
    args = [f"-var-file={spec.var_file}"]
    for key, value in spec.variables().items():
        args += ["-var", f"{key}={value}"]
    return args


def build_argv(spec: BuildSpec, *, packer: str = "packer") -> list[str]:
    """``packer build -machine-readable -color=false -var-file=... -var k=v ... <template>``."""
    return [
        packer,
        "build",
        "-machine-readable",
        "-color=false",
        *_var_args(spec),
        str(spec.template),
    ]


def validate_argv(spec: BuildSpec, *, packer: str = "packer") -> list[str]:
    """``packer validate`` with the same variables as the build."""
    return [packer, "validate", *_var_args(spec), str(spec.template)]


def init_argv(spec: BuildSpec, *, packer: str = "packer") -> list[str] | None:
    """``packer init <dir>`` for the production template (installs the plugin); None if local."""
    return None if spec.local else [packer, "init", str(spec.packer_dir)]


def build_env(spec: BuildSpec, environ: Mapping[str, str]) -> dict[str, str]:
    """The environment of the packer process: ``environ`` plus ``CHECKPOINT_DISABLE=1``.

    A local build gets ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY`` from ``environ`` (dummy
    ``testing`` values when unset: the local AWS accepts any) and no ``AWS_PROFILE``.
    """
    env = dict(environ)
    env["CHECKPOINT_DISABLE"] = "1"
    if spec.local:
        env.setdefault("AWS_ACCESS_KEY_ID", "testing")
        env.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
        env.pop("AWS_PROFILE", None)
    return env


def provenance_tags(spec: BuildSpec) -> dict[str, str]:
    """The AMI tags the templates write (``local.provenance_tags``), computed from the spec.

    Raises ConfigError when the source AMI is not resolved yet.
    """
    if spec.source_ami is None:
        raise ConfigError(f"{spec.name}: no source AMI resolved yet")
    return {
        "Name": spec.ami_name,
        f"{TAG_PREFIX}source-ami": spec.source_ami,
        f"{TAG_PREFIX}kubernetes-version": spec.k8s_version,
        f"{TAG_PREFIX}platform": spec.platform.value,
        f"{TAG_PREFIX}architecture": spec.arch.value,
        f"{TAG_PREFIX}hardening-level": str(spec.level),
        f"{TAG_PREFIX}benchmark": spec.benchmark,
        f"{TAG_PREFIX}git-commit": spec.git_commit,
        f"{TAG_PREFIX}run-id": spec.run_id,
        f"{TAG_PREFIX}built-by": BUILT_BY,
        f"{TAG_PREFIX}local": "true" if spec.local else "false",
        MANAGED_TAG: MANAGED_VALUE,
    }


@dataclass(frozen=True, slots=True)
class AmiBuild:
    """One AMI a build produced (one per region of a multi-region artifact)."""

    ami_id: str
    region: str
    platform: Platform
    arch: Arch
    k8s_version: str
    level: int
    source_ami: str
    run_id: str
    image_name: str
    git_commit: str
    local: bool
    packer_run_uuid: str
    build_time: int
    manifest_path: Path | None = None

    @property
    def name(self) -> str:
        """Short image name, as ``BuildSpec.name``: al2023-x86_64."""
        return f"{self.platform.short}-{self.arch.value}"


_REQUIRED_CUSTOM_DATA = (
    "platform",
    "architecture",
    "kubernetes_version",
    "hardening_level",
    "source_ami",
    "run_id",
)


def parse_artifact_id(artifact_id: str) -> list[tuple[str, str]]:
    """``us-east-1:ami-1,us-west-2:ami-2`` -> ``[("us-east-1", "ami-1"), ("us-west-2", "ami-2")]``.

    Also accepts Packer's machine-readable escape ``%!(PACKER_COMMA)``. Raises ConfigError.
    """
    pairs: list[tuple[str, str]] = []
    for part in artifact_id.replace(_PACKER_COMMA, ",").split(","):
        region, sep, ami = part.strip().partition(":")
        if not sep or not _REGION.fullmatch(region) or not _AMI_ID.fullmatch(ami):
            raise ConfigError(f"artifact ID {artifact_id!r}: expected region:ami-... pairs")
        pairs.append((region, ami))
    return pairs


def parse_manifest(
    text: str, run_uuid: str | None = None, *, path: Path | None = None
) -> list[AmiBuild]:
    """Every AMI of one Packer run recorded in a manifest (default: the file's ``last_run_uuid``).

    Packer appends to an existing manifest, so a file can hold several runs. ``custom_data`` must
    carry the keys the templates write (platform, architecture, ...). Raises ConfigError.
    """
    source = str(path) if path else "manifest"
    try:
        data: Any = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{source}: not JSON ({exc})") from None
    builds = data.get("builds") if isinstance(data, dict) else None
    if not isinstance(builds, list) or not builds:
        raise ConfigError(f"{source}: no builds recorded")
    wanted = run_uuid or data.get("last_run_uuid") or builds[-1].get("packer_run_uuid")
    mine = [b for b in builds if isinstance(b, dict) and b.get("packer_run_uuid") == wanted]
    if not mine:
        raise ConfigError(f"{source}: no build of Packer run {wanted}")
    result: list[AmiBuild] = []
    for index, build in enumerate(mine):
        where = f"{source}: build {build.get('name', index)!r} of run {wanted}"
        custom = build.get("custom_data") or {}
        missing = [key for key in _REQUIRED_CUSTOM_DATA if not custom.get(key)]
        if missing:
            raise ConfigError(f"{where}: custom_data lacks {', '.join(missing)}")
        try:
            platform = Platform(custom["platform"])
            arch = Arch(custom["architecture"])
            level = int(custom["hardening_level"])
        except ValueError as exc:
            raise ConfigError(f"{where}: {exc}") from None
        try:
            pairs = parse_artifact_id(str(build.get("artifact_id", "")))
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}") from None
        for region, ami_id in pairs:
            result.append(
                AmiBuild(
                    ami_id=ami_id,
                    region=region,
                    platform=platform,
                    arch=arch,
                    k8s_version=str(custom["kubernetes_version"]),
                    level=level,
                    source_ami=str(custom["source_ami"]),
                    run_id=str(custom["run_id"]),
                    image_name=str(custom.get("image_name", "")),
                    git_commit=str(custom.get("git_commit", "unknown")),
                    local=str(custom.get("local", "false")) == "true",
                    packer_run_uuid=str(wanted),
                    build_time=int(build.get("build_time") or 0),
                    manifest_path=path,
                )
            )
    return result


def last_run_uuid(text: str) -> str | None:
    """The ``last_run_uuid`` of a manifest's text, or None if it has none or is not JSON."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return None
    value = data.get("last_run_uuid") if isinstance(data, dict) else None
    return str(value) if value else None


def ui_lines(line: str) -> list[str]:
    """Human-readable text of one ``-machine-readable`` line (``time,target,type,data...``).

    ``ui`` lines give their message (escaped commas and newlines restored); other message types
    (artifact, artifact-count, ...) give nothing. A line that is not machine-readable is kept.
    """
    parts = line.split(",", 4)
    if len(parts) < 3 or not parts[0].isdigit():
        return [line] if line.strip() else []
    if parts[2] != "ui" or len(parts) < 5:
        return []
    text = parts[4].replace(_PACKER_COMMA, ",").replace("\\n", "\n").replace("\\r", "")
    return [piece for piece in text.split("\n") if piece.strip()]


def is_error_line(line: str) -> bool:
    """True for a ``-machine-readable`` ``ui,error`` line (Packer's own error messages)."""
    parts = line.split(",", 4)
    return len(parts) >= 4 and parts[0].isdigit() and parts[2] == "ui" and parts[3] == "error"


# Packer's UI messages (amazon-ebs builder, shell/file provisioners, the hardening script's first
# line, post-processors) -> the stage a build is in, first match wins. The messages are the
# plugin's ui.Say texts; tests/build/cases/packer_output/ holds real output to test them on.
_STAGES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), stage)
    for pattern, stage in (
        (r"^Prevalidating ", "checking the AMI name and the network"),
        (r"^Creating temporary (keypair|security group|instance profile|role)", "preparing"),
        (r"^Launching a (source|spot) AWS instance", "launching source instance"),
        (
            r"^(Waiting for SSH|Using SSH communicator|Connected to SSH|Using SSM Session Manager"
            r"|Uploading SSH public key)",
            "connecting (Session Manager)",
        ),
        (
            r"^Provisioning with shell script: .*security-updates\.sh",
            "provisioning (security updates)",
        ),
        (r"^Provisioning with shell script: .*cleanup\.sh", "provisioning (cleanup)"),
        (r"^cis-harden: CIS ", "provisioning (hardening)"),
        (r"^Running local shell script: .*stand-in\.sh", "provisioning (local stand-in)"),
        (r"^Uploading .* => ", "provisioning (uploading scripts)"),
        (r"^Stopping the source instance", "stopping source instance"),
        (r"^Creating AMI \S+ from instance", "creating AMI"),
        (r"^Copying/Encrypting AMI", "encrypting the AMI"),
        (r"^Adding tags to AMI", "tagging AMI"),
        (r"^Terminating the source AWS instance", "cleaning up"),
        (r"^Running post-processor", "writing manifest"),
    )
)
_UI_PREFIX = re.compile(r"^(==>|-->)?\s*[\w.-]+(?: \([\w-]+\))?: ")


def stage_of(text: str) -> str | None:
    """The build stage a Packer UI message starts (``launching source instance``), or None.

    ``text`` is one line from ``ui_lines``; the ``==> eks-cis.amazon-ebs.eks-cis:`` prefix is
    ignored.
    """
    message = _UI_PREFIX.sub("", text.strip(), count=1)
    for pattern, stage in _STAGES:
        if pattern.search(message):
            return stage
    return None


def stages(lines: Sequence[str]) -> list[str]:
    """The stages a sequence of UI lines passes through, each change once (console lines)."""
    seen: list[str] = []
    for line in lines:
        stage = stage_of(line)
        if stage is not None and (not seen or seen[-1] != stage):
            seen.append(stage)
    return seen


MIN_PRODUCTION_PACKER = (1, 10, 0)
_PACKER_VERSION = re.compile(r"^Packer v([0-9]+)\.([0-9]+)\.([0-9]+)", re.MULTILINE)


def check_packer_version(output: str, *, packer: str = "packer") -> tuple[int, int, int]:
    """The version ``packer version`` printed, if the production template can use it (>= 1.10).

    Raises ConfigError (one line, exit 2) for an older or unrecognised version: Debian's 1.6.6
    builds only the local template (--local).
    """
    match = _PACKER_VERSION.search(output)
    if not match:
        first = output.strip().splitlines()[0] if output.strip() else "nothing"
        raise ConfigError(f"`{packer} version` printed {first!r}, not a Packer version")
    found = (int(match[1]), int(match[2]), int(match[3]))
    if found < MIN_PRODUCTION_PACKER:
        raise ConfigError(
            f"{packer} {'.'.join(map(str, found))} is too old for the production template, which "
            "needs Packer >= 1.10 and the amazon plugin (README: Running against a real AWS "
            "account); Debian's 1.6.6 builds only the local template (--local)"
        )
    return found


def describe_builds(builds: Sequence[AmiBuild]) -> list[str]:
    """One line per AMI for the console: ``al2023-x86_64  us-east-1  ami-...  (k8s 1.33, L1)``."""
    return [
        f"{b.name:<14} {b.region:<14} {b.ami_id}  (k8s {b.k8s_version}, level {b.level}, "
        f"from {b.source_ami})"
        for b in builds
    ]
