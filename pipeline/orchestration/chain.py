"""``invoke build-and-validate``: build every image of the matrix, validate all in one scan, gate.

``--local`` runs the chain against the project's local AWS: a running ``invoke local-aws`` when
``AWS_ENDPOINT_URL`` points at one (later commands then see the same state), else one started
in this process. Either way the code below only ever sees an endpoint URL.
"""

from __future__ import annotations

import json
import os
import re
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import replace
from datetime import date
from pathlib import Path

import yaml

from pipeline import gate, github, outputs, policy, support
from pipeline.aws import is_aws_endpoint, make_clients
from pipeline.build.variables import check_vars
from pipeline.catalog import Platform
from pipeline.channels import release_settings
from pipeline.errors import ConfigError, ExitCode, PipelineError, PolicyError, Terminated
from pipeline.gate import Verdict
from pipeline.orchestration import nightly
from pipeline.orchestration.settings import ChainSettings
from pipeline.packer import DEFAULT_K8S_VERSION, Arch, check_k8s_version, check_level
from pipeline.runs import new_run_id
from pipeline.settings import writable_dir
from pipeline.validate import DEFAULT_INSTANCE_TYPES, Runtime, run_validate

_INSTANCE_TYPE = re.compile(r"^[a-z][a-z0-9-]*\.[a-z0-9]+$")
INSTANCE_TYPES_AT = "invoke.yaml: $.pipeline.validate.instance_types"


def preflight(settings: ChainSettings, today: date) -> None:
    """Check every flag, setting, policy and scenario before the Packer build starts.

    No AWS call: a mistake found here costs seconds, not a built AMI. Raises ConfigError or
    PolicyError (exit 2) listing the problem(s).
    """
    if settings.scenario is not None and not settings.local:
        raise ConfigError("--scenario rehearses failures on the local AWS: add --local")
    check_level(settings.level)
    try:
        platforms = [Platform.parse(p) for p in settings.platforms]
    except ConfigError as exc:
        raise ConfigError(f"--platform: {exc}") from None
    archs = [Arch.parse(a) for a in settings.archs]
    if not platforms or not archs:
        raise ConfigError("nothing to build: give at least one --platform and one --arch")
    for plat in platforms:
        check_k8s_version(plat, settings.k8s_version or DEFAULT_K8S_VERSION[plat])
    types = {**DEFAULT_INSTANCE_TYPES, **settings.validate.instance_types}
    for arch in archs:
        value = types.get(arch.value)
        if not isinstance(value, str) or not _INSTANCE_TYPE.fullmatch(value):
            raise ConfigError(
                f"{INSTANCE_TYPES_AT}.{arch.value}: {value!r} is not an EC2 instance type"
            )
    check_vars(dict(settings.build_vars), settings.local)
    writable_dir(settings.out_dir)
    policies = policy.load_all(policy.discover(settings.policy_dir))
    expired = [e for pol in policies.values() for e in policy.expiry_problems(pol, today)[0]]
    if expired:
        raise PolicyError(expired[0], problems=expired)
    missing = [p.short for p in platforms if p not in policies]
    if missing:
        raise ConfigError(
            f"--platform {','.join(missing)}: no exceptions policy in {settings.policy_dir}"
        )
    if settings.local and not os.environ.get("AWS_ENDPOINT_URL"):
        support.require_local_extra()
    if settings.local and settings.scenario is not None:
        with support.needs_local_extra():
            from pipeline.localaws import scenario as scenarios  # the optional `local` extra

        scenarios.load(settings.scenario)


def run_chain(settings: ChainSettings, rt: Runtime) -> Verdict:
    """Build, validate and gate; AMI IDs and the verdict go to ``$GITHUB_OUTPUT`` under Actions.

    ``preflight`` runs first: nothing is built unless every input is valid.
    """
    preflight(settings, rt.now().date())
    run_id = new_run_id(rt.now())
    with local_endpoint(settings.local, settings.scenario, rt.echo):
        clients = make_clients()
        support.check_real_aws(  # before any call: Inspector's CIS scanning dropped AL2
            [Platform.parse(p) for p in settings.platforms],
            real_aws=not settings.local and is_aws_endpoint(clients.endpoint_url),
            what="--platform al2",
        )
        with github.group("build", rt.echo):
            try:
                amis, decisions = nightly.build_or_reuse(settings, clients, run_id, rt.echo)
            except (PipelineError, KeyboardInterrupt) as exc:  # the reports say what failed
                _build_failed(settings, rt, run_id, exc)
                raise
        github.set_outputs({"ami-ids": ",".join(amis)})
        with github.group("validate and gate", rt.echo):
            verdict = run_validate(
                replace(
                    settings.validate,
                    amis=amis,
                    level=settings.level,
                    out_dir=settings.out_dir,
                    policy_dir=settings.policy_dir,
                    run_id=run_id,
                    resume=False,
                    run_id_is_new=True,  # made above: no earlier run's resources to look up
                    enable_inspector=settings.enable_inspector or settings.local,
                    local=settings.local,  # the local AWS: validate runs `invoke setup` first
                    evidence_bucket=settings.evidence.bucket,
                    signing_key=settings.evidence.signing_key,
                    ssm_timeout_s=rehearsal_timeout(
                        settings, "ssm_timeout_s", settings.validate.ssm_timeout_s
                    ),
                    scan_timeout_s=rehearsal_timeout(
                        settings, "scan_timeout_s", settings.validate.scan_timeout_s
                    ),
                ),
                clients,
                rt,
            )
        if settings.release is not None or decisions:
            release = settings.release or release_settings(
                {}, build_level=settings.level, known_regions=()
            )
            verdict = nightly.record_and_compare(
                verdict,
                clients,
                release,
                settings.out_dir,
                rt.echo,
                decisions=decisions,
                evidence=(settings.evidence.bucket, settings.evidence.signing_key),
            )
    github.set_outputs({"verdict": verdict.verdict.value, "run-id": run_id})
    return verdict


def _build_failed(
    settings: ChainSettings, rt: Runtime, run_id: str, exc: PipelineError | KeyboardInterrupt
) -> None:
    """An ERROR verdict.json (with the code the process exits with) for a failed build."""
    if isinstance(exc, PipelineError):
        code, why = int(exc.exit_code), str(exc)
    else:  # SIGINT 130, SIGTERM 143 (tasks.py maps them the same way)
        term = isinstance(exc, Terminated)
        code = int(ExitCode.TERMINATED if term else ExitCode.INTERRUPTED)
        why = f"interrupted by {'SIGTERM' if term else 'SIGINT'}"
    failed = gate.evaluate(
        [], {}, rt.now().date(), level=settings.level, problems=[f"build failed: {why}"]
    )
    context = {"run_id": run_id, "stage": "build", "exit_code": code}
    outputs.write_reports(replace(failed, context=context), settings.out_dir)


@contextmanager
def local_endpoint(
    local: bool, scenario: Path | None, echo: Callable[[str], None]
) -> Iterator[None]:
    """For ``--local``, point the clients (and packer) at the local AWS; otherwise do nothing.

    A running ``invoke local-aws`` named by ``AWS_ENDPOINT_URL`` is used (its state outlives
    this command); else one is started in this process and stops with it.
    """
    if not local:
        yield
        return
    external = os.environ.get("AWS_ENDPOINT_URL")
    if external:
        if scenario is not None:
            load_scenario_remote(external, scenario)
        echo(f"local AWS: using the one at {external}")
        yield
        return
    with ExitStack() as stack:
        with support.needs_local_extra():  # the `local` extra: only needed here
            from pipeline.localaws import local_aws  # the optional `local` extra (moto)

            aws = stack.enter_context(local_aws(scenario=scenario))
        stack.enter_context(environ(aws.env()))
        echo(
            f"local AWS: started in this process at {aws.endpoint} (it stops with this command; "
            "`invoke local-aws` keeps one running)"
        )
        yield


def load_scenario_remote(endpoint: str, path: Path) -> None:
    """Send a scenario file to a running ``invoke local-aws`` (validated there and here)."""
    with support.needs_local_extra():
        from pipeline.localaws import scenario as scenarios  # the optional `local` extra

    scenarios.load(path)  # one-line errors naming the file and JSON path, before any call
    body = json.dumps(yaml.safe_load(path.read_text(encoding="utf-8")) or {}).encode()
    request = urllib.request.Request(
        f"{endpoint.rstrip('/')}/_localaws/scenario",
        data=body,
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10):  # noqa: S310 - the configured endpoint
            pass
    except OSError as exc:
        raise ConfigError(
            f"--scenario {path}: the local AWS at {endpoint} refused it: {exc}"
        ) from exc


@contextmanager
def environ(values: Mapping[str, str]) -> Iterator[None]:
    """Set environment variables for the block, then restore them exactly."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


def rehearsal_timeout(settings: ChainSettings, name: str, default: float) -> float:
    """The SSM or scan wait (``name``: ``ssm_timeout_s``, ``scan_timeout_s``): a ``--local``
    rehearsal's scenario may set it (``pipeline.<name>``), so ``ssm-never-online`` and
    ``coverage-never`` end in seconds; never for a real endpoint (no scenario there)."""
    if not settings.local or settings.scenario is None:
        return default
    from pipeline.localaws import scenario as scenarios  # preflight checked the extra

    wanted = getattr(scenarios.load(settings.scenario), name)
    return default if wanted is None else float(wanted)


def split(value: str | Sequence[str] | None, default: Sequence[str]) -> tuple[str, ...]:
    """``"al2023,al2"`` → ("al2023", "al2"); empty → ``default``."""
    if value is None or value == "":
        return tuple(default)
    items = value.split(",") if isinstance(value, str) else list(value)
    return tuple(i.strip() for i in items if i.strip())
