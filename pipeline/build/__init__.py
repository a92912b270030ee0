"""The build step: resolve each image's EKS base AMI, run packer (one process per image, in
parallel), read each image's manifest and check that its AMI exists, is available and carries
the provenance tags. ``run_build`` is what ``invoke build`` calls.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import datetime
from functools import partial
from pathlib import Path
from urllib.parse import urlsplit

from pipeline import support
from pipeline.aws import AwsClients, boundary, ec2, is_aws_endpoint, make_clients
from pipeline.aws import release as aws_release
from pipeline.aws.images import describe_image, resolve_eks_base_ami
from pipeline.build.network import packer_network
from pipeline.build.process import (
    PACKER_INSTALL_HINT,
    LiveProcesses,
    Out,
    Outcome,
    Runner,
    check_version,
    last_error,
    locked,
    run_packer,
    run_process,
    utcnow,
)
from pipeline.build.variables import check_vars, image_key_vars
from pipeline.catalog import Platform
from pipeline.errors import AwsError, ConfigError, PipelineError, ToolError
from pipeline.fingerprint import inputs_fingerprint
from pipeline.heartbeat import Heartbeat
from pipeline.packer import (
    DEFAULT_K8S_VERSION,
    PACKER_DIR,
    AmiBuild,
    Arch,
    BuildSpec,
    build_env,
    check_k8s_version,
    check_level,
    describe_builds,
    init_argv,
    last_run_uuid,
    parse_manifest,
    provenance_tags,
)
from pipeline.runs import git_commit, new_run_id
from pipeline.settings import NetworkSettings
from pipeline.tags import BUILD_RUN_TAG, FINGERPRINT_TAG, MANAGED_TAG, MANAGED_VALUE

_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None


def _check_unique(specs: Sequence[BuildSpec]) -> None:
    names = [s.name for s in specs]
    paths = [s.manifest_path.resolve() for s in specs]
    if len(set(names)) != len(names) or len(set(paths)) != len(paths):
        raise ConfigError(f"each image must be built once, with its own manifest: {names}")


def _collect(
    spec: BuildSpec, previous_run: str | None, clients: AwsClients, say: Out
) -> list[AmiBuild]:
    """Read the manifest this run wrote and verify its AMIs in the clients' region."""
    text = _read(spec.manifest_path)
    run = last_run_uuid(text) if text is not None else None
    if text is None or run is None or run == previous_run:
        raise ToolError(
            f"{spec.name}: packer exited 0 but wrote no new manifest at {spec.manifest_path}"
        )
    builds = parse_manifest(text, path=spec.manifest_path)
    expected = provenance_tags(spec)
    for build in builds:
        if build.run_id != spec.run_id or build.name != spec.name:
            raise ToolError(
                f"{spec.name}: manifest {spec.manifest_path} records {build.name} of run "
                f"{build.run_id}, expected run {spec.run_id}"
            )
        if build.region != clients.region:
            say(
                f"[{spec.name}] {build.ami_id} in {build.region}: not checked from {clients.region}"
            )
            continue
        image = describe_image(clients, build.ami_id)
        if not image.available:
            raise ToolError(
                f"{spec.name}: AMI {image.id} in {image.region} is {image.state}, not available"
            )
        wrong = sorted(k for k, v in expected.items() if image.tags.get(k) != v)
        if wrong:
            got = {k: image.tags.get(k) for k in wrong}
            want = {k: expected[k] for k in wrong}
            raise ToolError(
                f"{spec.name}: AMI {image.id} in {image.region} has wrong provenance tags {got}, "
                f"expected {want}"
            )
        say(f"[{spec.name}] AMI {image.id} is available in {image.region} with its provenance tags")
    return builds


def build_images(
    specs: Sequence[BuildSpec],
    clients: AwsClients,
    *,
    runner: Runner = run_process,
    out: Out = print,
    packer: str = "packer",
    environ: Mapping[str, str] | None = None,
    max_workers: int | None = None,
) -> list[AmiBuild]:
    """Build every spec with packer, in parallel (one process per image), and return the AMIs.

    Per image: resolve the base AMI (ssm:GetParameter) unless ``spec.source_ami`` is set, run
    ``packer build`` (its output to ``spec.log_path``; the console gets one line per stage and
    Packer's errors, prefixed ``[al2023-x86_64]``), read its manifest, then check the AMI with
    ec2:DescribeImages (exists, ``available``, provenance tags). Production specs get ``packer
    version`` (>= 1.10) and ``packer init`` first. Raises ConfigError (bad input, unknown
    Kubernetes version, a Packer too old for the production template), ToolError (packer
    missing, non-zero exit with its last error and the log's path, no manifest, wrong tags) and
    AwsError.
    """
    if not specs:
        raise ConfigError("nothing to build: no platform/architecture selected")
    _check_unique(specs)
    say = locked(out)
    env = dict(os.environ if environ is None else environ)
    production = [s for s in specs if not s.local]
    if production:  # before any AWS call: Debian's 1.6.6 cannot run the production template
        check_version(production[0], runner, env, packer)

    resolved: list[BuildSpec] = []
    for spec in specs:
        if spec.source_ami is None:
            ami = resolve_eks_base_ami(clients, spec.k8s_version, spec.platform, spec.arch)
            spec = replace(spec, source_ami=ami)
        say(f"[{spec.name}] base AMI {spec.source_ami} (EKS {spec.k8s_version}, {spec.region})")
        resolved.append(spec)

    inits: dict[tuple[str, ...], BuildSpec] = {}
    for spec in resolved:
        init = init_argv(spec, packer=packer)
        if init is not None:
            inits.setdefault(tuple(init), spec)
    for init_cmd, spec in inits.items():
        code = runner(init_cmd, build_env(spec, env), lambda line: say(f"[packer init] {line}"))
        if code != 0:
            raise ToolError(f"`{' '.join(init_cmd)}` exited {code}; {PACKER_INSTALL_HINT}")

    previous: dict[str, str | None] = {}
    for spec in resolved:
        spec.manifest_path.parent.mkdir(parents=True, exist_ok=True)
        text = _read(spec.manifest_path)
        previous[spec.name] = last_run_uuid(text) if text is not None else None

    live = LiveProcesses()
    if runner is run_process:
        runner = partial(run_process, live=live)
    beat = _heartbeat(clients, resolved, say, live)
    if not beat.beat():  # before packer runs: a heartbeat that cannot work fails in seconds
        raise AwsError(
            f"heartbeat: {beat.error}: without it `invoke reap` would take this build's "
            "resources for abandoned; nothing was launched"
        )
    outcomes: list[Outcome] = []
    errors: list[PipelineError] = []
    with (
        ThreadPoolExecutor(
            max_workers=max_workers or len(resolved), thread_name_prefix="packer"
        ) as pool,
        beat,
    ):
        futures = [pool.submit(run_packer, s, runner, env, say, packer) for s in resolved]
        for future in futures:
            try:
                outcomes.append(future.result())
            except PipelineError as exc:
                errors.append(exc)
    if beat.lost:
        raise AwsError(f"build stopped: {beat.lost}; packer was interrupted to clean up")
    if errors:
        raise errors[0]
    failed = [o for o in outcomes if o.returncode != 0]
    if failed:
        tails = [
            f"{o.spec.name}: packer exited {o.returncode} after {o.seconds:.1f}s; last lines:\n  "
            + "\n  ".join(o.tail or ("(no output)",))
            for o in failed
        ]
        # one line per image: its last error (or last line) and where the whole output is
        lines = [
            f"{o.spec.name}: packer exited {o.returncode} after {o.seconds:.1f}s: "
            f"{last_error(o.tail)} (full log: {o.spec.log_path})"
            for o in failed
        ]
        raise ToolError("packer build failed:\n" + "\n".join(tails), problems=lines)

    builds: list[AmiBuild] = []
    for outcome in outcomes:
        mine = _collect(outcome.spec, previous[outcome.spec.name], clients, say)
        builds += mine
        amis = ", ".join(b.ami_id for b in mine)
        say(f"[{outcome.spec.name}] done {amis} in {outcome.seconds:.1f}s")
    return builds


def _heartbeat(
    clients: AwsClients, specs: Sequence[BuildSpec], say: Out, live: LiveProcesses
) -> Heartbeat:
    """Keeps Packer's temporary resources of these builds alive for ``invoke reap`` while
    packer runs (they carry the build's run ID and the ownership tag through run_tags). Lost
    (``heartbeat.MAX_FAILURES`` failed beats in a row), it interrupts every packer, which then
    deletes what it created, and the build fails (exit 1) naming the cause."""
    run_ids = sorted({s.run_id for s in specs})

    def on_lost(reason: str) -> None:
        say(f"ERROR  {reason}: interrupting packer so it deletes its instance, group and key")
        live.interrupt()

    return Heartbeat(
        partial(ec2.write_tags, clients),
        find=partial(ec2.run_resource_ids, clients, BUILD_RUN_TAG, run_ids),
        echo=say,
        on_lost=on_lost,
    )


def _unique(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(v.strip() for v in values if v.strip()))


def make_specs(
    platforms: Sequence[Platform],
    archs: Sequence[Arch],
    k8s_version: str | None,
    level: int,
    *,
    local: bool,
    run_id: str,
    region: str,
    out_dir: Path,
    git_commit: str = "unknown",
    endpoint: str | None = None,
    packer_dir: Path = PACKER_DIR,
    extra_vars: Mapping[str, str] | None = None,
) -> list[BuildSpec]:
    """One BuildSpec per platform x architecture; manifests go to ``out_dir/<name>.manifest.json``.

    ``k8s_version`` None means each platform's default (DEFAULT_K8S_VERSION: 1.33 for AL2023,
    1.32 for AL2). Raises ConfigError for AL2 with Kubernetes >= 1.33 and other bad values.
    """
    check_level(level)
    extra = tuple(sorted((extra_vars or {}).items()))
    specs = []
    for platform in platforms:
        version = check_k8s_version(platform, k8s_version or DEFAULT_K8S_VERSION[platform])
        for arch in archs:
            name = f"{platform.short}-{arch.value}"
            specs.append(
                BuildSpec(
                    platform=platform,
                    arch=arch,
                    k8s_version=version,
                    level=level,
                    run_id=run_id,
                    region=region,
                    manifest_path=(out_dir / f"{name}.manifest.json").resolve(),
                    git_commit=git_commit,
                    local=local,
                    endpoint=endpoint,
                    packer_dir=packer_dir,
                    extra_vars=extra,
                )
            )
    return specs


def _check_endpoint(local: bool, endpoint: str | None) -> None:
    host = urlsplit(endpoint).hostname if endpoint else None
    if local and is_aws_endpoint(endpoint):
        raise ConfigError(
            "--local builds only against the local AWS (its endpoint URL must be configured, "
            f"e.g. AWS_ENDPOINT_URL); the clients point at {endpoint or 'AWS'}: refusing to "
            "register an unhardened AMI there"
        )
    if not local and host in _LOOPBACK:
        raise ConfigError(
            f"the clients point at the local AWS ({endpoint}): the production template needs real "
            "AWS; add --local to build the local template"
        )


def tag_builds(
    clients: AwsClients,
    builds: Sequence[AmiBuild],
    *,
    policy_dir: Path,
    packer_dir: Path = PACKER_DIR,
    out: Callable[[str], None] = print,
) -> None:
    """Tag each built AMI (in the clients' region) as the pipeline's, with its fingerprint."""
    for build in builds:
        if build.region != clients.region:
            continue
        value = inputs_fingerprint(
            build.platform,
            build.arch,
            build.k8s_version,
            build.level,
            build.local,
            build.source_ami,
            policy_dir,
            packer_dir,
        )
        with boundary(f"tag {build.ami_id}"):
            aws_release.tag(
                clients, [build.ami_id], {MANAGED_TAG: MANAGED_VALUE, FINGERPRINT_TAG: value}
            )
        out(f"[{build.name}] {build.ami_id}: {FINGERPRINT_TAG}={value}")


def run_build(
    platforms: Sequence[str] = ("al2023",),
    archs: Sequence[str] = ("x86_64",),
    k8s_version: str | None = None,
    level: int = 1,
    local: bool = False,
    out_dir: Path | str = Path("out"),
    out: Out = print,
    *,
    clients: AwsClients | None = None,
    region: str | None = None,
    run_id: str | None = None,
    runner: Runner = run_process,
    clock: Callable[[], datetime] = utcnow,
    environ: Mapping[str, str] | None = None,
    packer_dir: Path = PACKER_DIR,
    extra_vars: Mapping[str, str] | None = None,
    policy_dir: Path | None = None,
    release_accounts: Sequence[str] = (),
    kms_keys: Mapping[str, str] | None = None,
    network: NetworkSettings | None = None,
) -> list[AmiBuild]:
    """Build the CIS-hardened AMIs of ``platforms`` x ``archs``, print their IDs (``invoke build``).

    ``platforms``: al2023 / al2; ``archs``: x86_64 / arm64. ``k8s_version`` None picks each
    platform's default: 1.33 for AL2023 and 1.32 for AL2 (EKS published no AL2 AMIs after 1.32);
    an explicit version >= 1.33 with al2 is a ConfigError naming --k8s-version. ``level`` is the
    CIS level (1|2). ``local`` builds the 1.6.6-valid local template against the local AWS the
    ``clients`` point at (``clients.endpoint_url``), never against real AWS. Packer writes one
    manifest per image into ``out_dir`` (``al2023-x86_64.manifest.json``; appended across runs,
    read by ``pipeline.packer.parse_manifest``). ``clients`` default to ``make_clients(region)``;
    ``run_id`` defaults to a time-stamped ID from ``clock``. ``network``: the subnet, security
    group and public IP asked for (``pipeline.build.network``: checked, then Packer's variables).
    ``kms_key_id`` defaults to ``kms_keys[region]``; with ``release_accounts`` the default EBS
    key is refused (``image_key_vars``). Raises ConfigError (exit 2), ToolError and AwsError
    (exit 1).
    """
    try:
        plats = [Platform.parse(p) for p in _unique(platforms)]
    except ConfigError as exc:
        raise ConfigError(f"--platform: {exc}") from None
    arch_list = [Arch.parse(a) for a in _unique(archs)]
    if not plats or not arch_list:
        raise ConfigError("nothing to build: give at least one --platform and one --arch")
    check_level(level)
    for plat in plats:  # fail before any AWS call
        check_k8s_version(plat, k8s_version or DEFAULT_K8S_VERSION[plat])
    check_vars(extra_vars or {}, local, packer_dir)

    clients = clients or make_clients(region=region)
    extra_vars = image_key_vars(
        extra_vars or {}, accounts=release_accounts, kms_keys=kms_keys or {}, region=clients.region
    )
    _check_endpoint(local, clients.endpoint_url)
    support.check_real_aws(
        plats, real_aws=not local and is_aws_endpoint(clients.endpoint_url), what="--platform al2"
    )
    run = run_id or new_run_id(clock())
    specs = make_specs(
        plats,
        arch_list,
        k8s_version,
        level,
        local=local,
        run_id=run,
        region=clients.region,
        out_dir=Path(out_dir),
        git_commit=git_commit(packer_dir.parent),
        endpoint=clients.endpoint_url if local else None,
        packer_dir=packer_dir,
        extra_vars=extra_vars,
    )
    kind = "local template against " + str(clients.endpoint_url) if local else "production template"
    out(f"run {run}: building {', '.join(s.name for s in specs)} ({kind})")
    # where Packer launches: checked (a zone offering the type, a route to SSM), then its vars
    placed = packer_network(clients, specs, network or NetworkSettings(), extra_vars or {}, out)
    specs = [
        replace(s, extra_vars=tuple(sorted({**dict(s.extra_vars), **placed}.items())))
        for s in specs
    ]
    builds = build_images(specs, clients, runner=runner, out=out, environ=environ)
    # The pipeline's ownership tag and the input fingerprint (--skip-unchanged, retention).
    tag_builds(
        clients,
        builds,
        policy_dir=policy_dir or packer_dir.parent / "policies" / "exceptions",
        packer_dir=packer_dir,
        out=out,
    )
    for line in describe_builds(builds):
        out(line)
    out(
        f"build OK: run {run}, {len(builds)} AMI(s): {', '.join(b.ami_id for b in builds)} "
        f"(packer logs: {', '.join(str(s.log_path) for s in specs)})"
    )
    return builds
