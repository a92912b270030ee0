"""pipeline.build glue with a fake packer (a runner that registers an AMI in the local AWS and
writes a manifest as Packer does), plus the guards of run_build and the subprocess runner."""

from __future__ import annotations

import json
import re
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from _local_aws import LocalEndpoint, eks_base_ami, raw_client

from pipeline.aws import AwsClients, make_clients
from pipeline.build import build_images, run_build, run_process
from pipeline.catalog import Platform
from pipeline.errors import AwsError, ConfigError, ToolError
from pipeline.packer import Arch, BuildSpec, provenance_tags
from pipeline.runs import git_commit, new_run_id

NOW = datetime(2026, 11, 26, 12, 0, 0, tzinfo=UTC)


def _vars(argv: Sequence[str]) -> dict[str, str]:
    pairs = [argv[i + 1] for i, arg in enumerate(argv) if arg == "-var"]
    return dict(p.split("=", 1) for p in pairs)


@dataclass
class FakePacker:
    """Stands in for ``packer build``: registers the AMI it would create and appends a manifest."""

    endpoint: str
    exit_code: int = 0
    write_manifest: bool = True
    tamper: Callable[[dict[str, str]], None] | None = None
    extra_regions: tuple[str, ...] = ()
    ami_override: str | None = None
    barrier: threading.Barrier | None = None
    version: str = "Packer v1.11.2"
    calls: list[tuple[list[str], dict[str, str]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(
        self, argv: Sequence[str], env: Mapping[str, str], on_line: Callable[[str], None]
    ) -> int:
        with self.lock:
            self.calls.append((list(argv), dict(env)))
        if argv[1] == "init":
            return 0
        if argv[1] == "version":
            on_line(self.version)
            return 0
        if self.barrier is not None:
            self.barrier.wait()  # BrokenBarrierError unless the builds run concurrently
        values = _vars(argv)
        name = Path(next(a for a in argv if a.startswith("-var-file=")).split("=", 1)[1]).stem
        short, arch = name.removesuffix(".pkrvars").split("-")
        spec = BuildSpec(
            platform=Platform.parse(short),
            arch=Arch(arch),
            k8s_version=values["kubernetes_version"],
            level=int(values["hardening_level"]),
            run_id=values["run_id"],
            region=values["region"],
            manifest_path=Path(values["manifest_path"]),
            git_commit=values["git_commit"],
            source_ami=values["source_ami"],
            local="ec2_endpoint" in values,
            endpoint=values.get("ec2_endpoint"),
        )
        for i in range(30):
            on_line(f"1795702604,,ui,message,    eks-cis.amazon-ebs.eks-cis: step {i}")
        if self.exit_code:
            on_line("1795702604,,ui,error,Build 'eks-cis.amazon-ebs.eks-cis' errored: boom")
            return self.exit_code
        tags = provenance_tags(spec)
        if self.tamper:
            self.tamper(tags)
        ec2 = raw_client("ec2", self.endpoint)
        ami = self.ami_override
        if ami is None:
            ami = ec2.register_image(Name=spec.ami_name)["ImageId"]
            # moto's RegisterImage ignores TagSpecifications; packer tags with CreateTags anyway.
            tag_list = [{"Key": k, "Value": v} for k, v in tags.items()]
            ec2.create_tags(Resources=[ami], Tags=tag_list)
        if self.write_manifest:
            artifact = ",".join(
                [
                    f"{spec.region}:{ami}",
                    *(f"{r}:ami-0copy{i}" for i, r in enumerate(self.extra_regions)),
                ]
            )
            self._append(spec, artifact)
        return 0

    def _append(self, spec: BuildSpec, artifact: str) -> None:
        path = spec.manifest_path
        data: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {"builds": []}
        run = str(uuid.uuid4())
        data["builds"].append(
            {
                "name": "eks-cis",
                "builder_type": "amazon-ebs",
                "build_time": 1795702604,
                "files": None,
                "artifact_id": artifact,
                "packer_run_uuid": run,
                "custom_data": {
                    "run_id": spec.run_id,
                    "image_name": spec.image_name,
                    "platform": spec.platform.value,
                    "architecture": spec.arch.value,
                    "kubernetes_version": spec.k8s_version,
                    "hardening_level": str(spec.level),
                    "benchmark": spec.benchmark,
                    "source_ami": spec.source_ami,
                    "git_commit": spec.git_commit,
                    "local": "true" if spec.local else "false",
                },
            }
        )
        data["last_run_uuid"] = run
        path.write_text(json.dumps(data))


def _spec(tmp_path: Path, platform: Platform, arch: Arch, **changes: Any) -> BuildSpec:
    values: dict[str, Any] = {
        "platform": platform,
        "arch": arch,
        "k8s_version": "1.33" if platform is Platform.AMAZON_LINUX_2023 else "1.32",
        "level": 1,
        "run_id": f"run-{uuid.uuid4().hex[:8]}",
        "region": "us-east-1",
        "manifest_path": tmp_path / f"{platform.short}-{arch.value}.manifest.json",
        "local": True,
        "endpoint": "http://127.0.0.1:1",
    }
    values.update(changes)
    return BuildSpec(**values)


@pytest.fixture
def fake(local_endpoint: LocalEndpoint) -> FakePacker:
    return FakePacker(local_endpoint.url)


def test_builds_run_in_parallel_and_are_verified(
    tmp_path: Path, local_clients: AwsClients, fake: FakePacker
) -> None:
    specs = [
        _spec(tmp_path, Platform.AMAZON_LINUX_2023, Arch.X86_64, local=False, endpoint=None),
        _spec(tmp_path, Platform.AMAZON_LINUX_2, Arch.ARM64, local=False, endpoint=None),
    ]
    fake.barrier = threading.Barrier(2, timeout=10)
    lines: list[str] = []
    builds = build_images(
        specs, local_clients, runner=fake, out=lines.append, environ={"PATH": "/bin"}
    )

    assert [(b.name, b.source_ami, b.region) for b in builds] == [
        ("al2023-x86_64", eks_base_ami(fake.endpoint, "1.33", "al2023", "x86_64"), "us-east-1"),
        ("al2-arm64", eks_base_ami(fake.endpoint, "1.32", "al2", "arm64"), "us-east-1"),
    ]
    assert [b.manifest_path for b in builds] == [s.manifest_path for s in specs]
    inits = [argv for argv, _ in fake.calls if argv[1] == "init"]
    assert len(inits) == 1  # one `packer init packer/` for the production template
    for argv, env in fake.calls:
        assert env["CHECKPOINT_DISABLE"] == "1"
        if argv[1] == "build":
            assert f"manifest_path={argv and _vars(argv)['manifest_path']}" in argv
    assert all(re.match(r"^\[(al2023-x86_64|al2-arm64|packer init)\] ", line) for line in lines), (
        lines
    )
    # packer's own lines go to the image's log file, not to the console
    assert not any("step 29" in line for line in lines)
    for spec in specs:
        log = spec.manifest_path.with_name(f"{spec.name}.packer.log")
        assert f"[{spec.name}] packer log: {log}" in lines
        text = log.read_text()
        assert text.startswith("# packer build ")
        assert "eks-cis.amazon-ebs.eks-cis: step 29\n" in text
    assert any("is available in us-east-1 with its provenance tags" in line for line in lines)
    assert any(re.fullmatch(r"\[al2-arm64\] done ami-\w+ in \d+\.\ds", line) for line in lines)


def test_multi_region_artifact_checks_the_home_region(
    tmp_path: Path, local_clients: AwsClients, fake: FakePacker
) -> None:
    fake.extra_regions = ("us-west-2",)
    spec = _spec(tmp_path, Platform.AMAZON_LINUX_2023, Arch.ARM64)
    lines: list[str] = []
    builds = build_images([spec], local_clients, runner=fake, out=lines.append)
    assert [(b.region, b.ami_id.startswith("ami-0copy")) for b in builds] == [
        ("us-east-1", False),
        ("us-west-2", True),
    ]
    assert any("not checked from us-east-1" in line for line in lines)


def test_packer_failure_names_the_image_and_shows_the_tail(
    tmp_path: Path, local_clients: AwsClients, fake: FakePacker
) -> None:
    fake.exit_code = 1
    spec = _spec(tmp_path, Platform.AMAZON_LINUX_2023, Arch.X86_64)
    with pytest.raises(ToolError) as err:
        build_images([spec], local_clients, runner=fake, out=lambda _: None)
    assert "al2023-x86_64" in str(err.value)
    (problem,) = err.value.lines()
    assert problem.startswith("al2023-x86_64: packer exited 1 after ")
    assert problem.endswith(f"errored: boom (full log: {spec.log_path})")
    assert "step 29" in str(err.value) and "step 4\n" not in str(err.value)
    assert "step 0\n" in spec.log_path.read_text(), "the log keeps everything"


def test_missing_packer_binary_gives_the_install_hint(
    tmp_path: Path, local_clients: AwsClients
) -> None:
    spec = _spec(tmp_path, Platform.AMAZON_LINUX_2023, Arch.X86_64, source_ami="ami-0abc")
    with pytest.raises(ToolError, match=r"not found on PATH.*apt-get install packer"):
        build_images([spec], local_clients, packer="/nonexistent/packer", out=lambda _: None)


def test_exit_zero_without_a_new_manifest_is_an_error(
    tmp_path: Path, local_clients: AwsClients, fake: FakePacker
) -> None:
    spec = _spec(tmp_path, Platform.AMAZON_LINUX_2023, Arch.X86_64)
    build_images([spec], local_clients, runner=fake, out=lambda _: None)  # a first run
    fake.write_manifest = False
    with pytest.raises(ToolError, match="wrote no new manifest"):
        build_images([spec], local_clients, runner=fake, out=lambda _: None)


def test_wrong_provenance_tags_are_an_error(
    tmp_path: Path, local_clients: AwsClients, fake: FakePacker
) -> None:
    fake.tamper = lambda tags: tags.update({"cis-ami:hardening-level": "2"})
    spec = _spec(tmp_path, Platform.AMAZON_LINUX_2, Arch.X86_64)
    with pytest.raises(
        ToolError, match=r"wrong provenance tags \{'cis-ami:hardening-level': '2'\}"
    ):
        build_images([spec], local_clients, runner=fake, out=lambda _: None)


def test_manifest_naming_a_missing_ami_is_an_error(
    tmp_path: Path, local_clients: AwsClients, fake: FakePacker
) -> None:
    fake.ami_override = "ami-0000000000000dead"
    spec = _spec(tmp_path, Platform.AMAZON_LINUX_2, Arch.X86_64)
    with pytest.raises(AwsError, match="AMI ami-0000000000000dead not found in us-east-1"):
        build_images([spec], local_clients, runner=fake, out=lambda _: None)


def test_duplicate_images_are_refused(tmp_path: Path, local_clients: AwsClients) -> None:
    spec = _spec(tmp_path, Platform.AMAZON_LINUX_2, Arch.X86_64)
    with pytest.raises(ConfigError, match="each image must be built once"):
        build_images([spec, spec], local_clients, runner=lambda *_: 0)


# --- run_build ----------------------------------------------------------------------------------


def test_run_build_defaults_per_platform(
    tmp_path: Path, local_clients: AwsClients, fake: FakePacker
) -> None:
    lines: list[str] = []
    builds = run_build(
        ["al2023", "al2", "al2023"],
        ["arm64"],
        local=True,
        out_dir=tmp_path / "out",
        out=lines.append,
        clients=local_clients,
        runner=fake,
        clock=lambda: NOW,
    )
    assert [(b.name, b.k8s_version, b.level, b.local) for b in builds] == [
        ("al2023-arm64", "1.33", 1, True),
        ("al2-arm64", "1.32", 1, True),
    ]
    run_id = builds[0].run_id
    assert run_id.startswith("20261126T120000Z-") and builds[1].run_id == run_id
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "al2-arm64.manifest.json",
        "al2-arm64.packer.log",
        "al2023-arm64.manifest.json",
        "al2023-arm64.packer.log",
    ]
    values = _vars(fake.calls[0][0])
    assert values["ec2_endpoint"] == local_clients.endpoint_url
    assert re.fullmatch(r"[0-9a-f]{40}|unknown", values["git_commit"])
    assert lines[0].startswith(f"run {run_id}: building al2023-arm64, al2-arm64 (local template")
    assert any(b.ami_id in line for b in builds for line in lines[-2:])
    assert lines[-1].startswith(f"build OK: run {run_id}, 2 AMI(s): ")
    assert not [c for c in fake.calls if c[0][1] == "version"], "the local build keeps 1.6.6"


def test_run_build_refuses_al2_after_132_before_any_call(local_clients: AwsClients) -> None:
    def runner(*_: Any) -> int:
        raise AssertionError("packer must not run")

    with pytest.raises(ConfigError, match=r"--k8s-version 1\.33") as err:
        run_build(["al2023", "al2"], ["x86_64"], "1.33", clients=local_clients, runner=runner)
    assert err.value.exit_code == 2
    assert local_clients.calls.total == 0


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"platforms": ["ubuntu"]}, "--platform: unknown platform 'ubuntu'"),
        ({"archs": ["ppc64le"]}, "--arch 'ppc64le'"),
        ({"level": 3}, "--level 3"),
        ({"k8s_version": "latest"}, "--k8s-version 'latest'"),
        ({"platforms": []}, "nothing to build"),
    ],
)
def test_run_build_rejects_bad_arguments(
    kwargs: dict[str, Any], error: str, local_clients: AwsClients
) -> None:
    with pytest.raises(ConfigError, match=re.escape(error)):
        run_build(clients=local_clients, runner=lambda *_: 0, **kwargs)


def test_local_build_is_refused_against_real_aws() -> None:
    clients = make_clients(region="us-east-1")  # no endpoint override: real AWS (never called)
    with pytest.raises(ConfigError, match="refusing to register an unhardened AMI"):
        run_build(local=True, clients=clients, runner=lambda *_: 0)
    assert clients.calls.total == 0


def test_production_build_is_refused_against_the_local_aws(local_clients: AwsClients) -> None:
    with pytest.raises(ConfigError, match="add --local"):
        run_build(local=False, clients=local_clients, runner=lambda *_: 0)


# --- helpers ------------------------------------------------------------------------------------


def test_run_process_streams_merged_output_and_returns_the_code() -> None:
    lines: list[str] = []
    code = run_process(
        ["sh", "-c", "echo one; echo two >&2; exit 3"], {"PATH": "/usr/bin:/bin"}, lines.append
    )
    assert (code, lines) == (3, ["one", "two"])


def test_git_commit(tmp_path: Path) -> None:
    assert re.fullmatch(r"[0-9a-f]{40}", git_commit())
    assert git_commit(tmp_path) == "unknown"


def test_new_run_id() -> None:
    assert new_run_id(NOW, "abc123") == "20261126T120000Z-abc123"
    assert re.fullmatch(r"20261126T120000Z-[0-9a-f]{6}", new_run_id(NOW))
