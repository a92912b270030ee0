"""Earlier runs: a resumed run (``--run-id``) must match the one it continues, and ``--out``
never mixes an earlier run's evidence with a later run's verdict."""

from __future__ import annotations

import shutil
from pathlib import Path

from pipeline.aws import AwsClients, ec2, inspector
from pipeline.aws.images import Image
from pipeline.errors import ConfigError
from pipeline.validate.settings import Runtime, ValidateSettings

# What one run writes into --out; removed at the start of the next, so that --out never mixes
# an earlier run's evidence with a later run's verdict.
RUN_FILES = ("verdict.json", "junit.xml", "summary.md")
RUN_DIRS = ("evidence",)


def check_resumable(
    clients: AwsClients, settings: ValidateSettings, run_id: str, images: list[Image], rt: Runtime
) -> None:
    """``--run-id``: the earlier run must exist, and its scan must be of this level and targets.

    Raises ConfigError (exit 2) naming what differs; a resumed run never reuses a scan
    configuration of another level or of other targets.
    """
    configs = inspector.describe_configurations(clients, f"cis-validate-{run_id}")
    live = ec2.run_instances(clients, run_id)
    if not configs and not live:
        raise ConfigError(
            f"--run-id {run_id}: no earlier run has this ID (no live test instance or scan "
            "configuration carries it; a finished run cleans up after itself); leave out "
            "--run-id to start a fresh run"
        )
    want = f"LEVEL_{settings.level}"
    for config in configs:
        if config.level != want:
            raise ConfigError(
                f"--run-id {run_id}: its scan configuration {config.arn} is a {config.level} "
                f"scan, not {want}; a resumed run never reuses a scan of another level: leave "
                "out --run-id to start a fresh run"
            )
        if config.target_tags != {ec2.RUN_TAG: [run_id]}:
            raise ConfigError(
                f"--run-id {run_id}: its scan configuration {config.arn} targets "
                f"{config.target_tags}, not this run's instances: leave out --run-id"
            )
    others = sorted({i.ami_id for i in live} - {image.id for image in images})
    if others:
        raise ConfigError(
            f"--run-id {run_id}: the earlier run also has test instances of {', '.join(others)}; "
            "resume with the same --ami list, or leave out --run-id"
        )
    rt.echo(
        f"resuming run {run_id}: {len(live)} live test instance(s), "
        f"{len(configs)} scan configuration(s)"
    )


def clear_previous_run(out: Path, rt: Runtime) -> None:
    """Remove the previous run's reports and evidence from ``out`` (links are unlinked, never
    followed)."""
    removed = []
    for name in RUN_FILES + RUN_DIRS:
        path = out / name
        try:
            if path.is_symlink() or path.is_file():
                path.unlink()
            elif path.is_dir():
                shutil.rmtree(path)
            else:
                continue
        except OSError as exc:
            raise ConfigError(
                f"--out {out}: cannot remove the previous run's {name}: {exc}"
            ) from exc
        removed.append(name)
    if removed:
        rt.echo(f"{out}: removed the previous run's {', '.join(removed)}")
