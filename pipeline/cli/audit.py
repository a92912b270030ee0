"""``invoke audit``: re-validate the image each release channel serves and report each one's
three-section verdict (``pipeline.orchestration.audit``). Exit 0 all pass, 3 any no longer
passes, 4 any could not be validated; ``--dry-run`` lists what it would re-validate (exit 0)."""

from __future__ import annotations

from pipeline.aws import make_clients
from pipeline.cli.invocation import Invocation, echo, echo_for, print_json
from pipeline.errors import ExitCode
from pipeline.orchestration.audit import audit_lines, run_audit, write_summary
from pipeline.release.promote import release_config
from pipeline.validate import Runtime, run_settings


def audit(
    inv: Invocation,
    channel: str | None,
    dry_run: bool,
    out: str | None,
    enable_inspector: bool = False,
    json: bool = False,
) -> ExitCode:
    result = run_audit(
        release_config(inv.config),
        # the settings `invoke validate` uses
        run_settings(inv.config, inv.root, out=out, enable_inspector=enable_inspector),
        make_clients(),
        Runtime(echo=echo_for(json)),
        channel=channel,
        dry_run=dry_run,
    )
    if json:
        print_json(result.as_dict())
    else:
        for line in audit_lines(result):
            echo(line)
    write_summary(result)
    return result.exit_code
