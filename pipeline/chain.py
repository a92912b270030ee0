"""``invoke build-and-validate``: build every image of the matrix, validate all in one scan, gate.

``--local`` runs the chain against the project's local AWS: a running ``invoke local-aws`` when
``AWS_ENDPOINT_URL`` points at one (later commands then see the same state), else one started
in this process. Either way the code below only ever sees an endpoint URL.
"""

from __future__ import annotations

import json
import os
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import yaml

from pipeline import github
from pipeline.aws import make_clients
from pipeline.build import new_run_id, run_build
from pipeline.errors import ConfigError
from pipeline.gate import Verdict
from pipeline.validate import Runtime, ValidateSettings, run_validate


@dataclass(frozen=True)
class ChainSettings:
    platforms: tuple[str, ...]
    archs: tuple[str, ...]
    k8s_version: str | None
    level: int
    out_dir: Path
    policy_dir: Path
    local: bool = False
    scenario: Path | None = None
    enable_inspector: bool = False
    instance_profile: str | None = None
    subnet_id: str | None = None


def run_chain(settings: ChainSettings, rt: Runtime) -> Verdict:
    """Build, validate and gate; AMI IDs and the verdict go to ``$GITHUB_OUTPUT`` under Actions."""
    if settings.scenario is not None and not settings.local:
        raise ConfigError("--scenario rehearses failures on the local AWS: add --local")
    run_id = new_run_id(rt.now())
    with local_endpoint(settings.local, settings.scenario, rt.echo):
        clients = make_clients()
        with github.group("build", rt.echo):
            builds = run_build(
                settings.platforms,
                settings.archs,
                settings.k8s_version,
                settings.level,
                settings.local,
                settings.out_dir / "build",
                rt.echo,
                clients=clients,
                run_id=run_id,
            )
        amis = tuple(b.ami_id for b in builds)
        github.set_outputs({"ami-ids": ",".join(amis)})
        with github.group("validate and gate", rt.echo):
            verdict = run_validate(
                ValidateSettings(
                    amis=amis,
                    level=settings.level,
                    out_dir=settings.out_dir,
                    policy_dir=settings.policy_dir,
                    run_id=run_id,
                    instance_profile=settings.instance_profile,
                    subnet_id=settings.subnet_id,
                    enable_inspector=settings.enable_inspector or settings.local,
                    local=settings.local,
                ),
                clients,
                rt,
            )
    github.set_outputs({"verdict": verdict.verdict.value, "run-id": run_id})
    return verdict


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
    from pipeline.localaws import local_aws  # the `local` extra: only needed here

    with local_aws(scenario=scenario) as aws, _environ(aws.env()):
        echo(
            f"local AWS: started in this process at {aws.endpoint} (it stops with this command; "
            "`invoke local-aws` keeps one running)"
        )
        yield


def load_scenario_remote(endpoint: str, path: Path) -> None:
    """Send a scenario file to a running ``invoke local-aws`` (validated there and here)."""
    from pipeline.localaws import scenario as scenarios

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
def _environ(values: dict[str, str]) -> Iterator[None]:
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


def split(value: str | Sequence[str] | None, default: Sequence[str]) -> tuple[str, ...]:
    """``"al2023,al2"`` → ("al2023", "al2"); empty → ``default``."""
    if value is None or value == "":
        return tuple(default)
    items = value.split(",") if isinstance(value, str) else list(value)
    return tuple(i.strip() for i in items if i.strip())
