"""The project's emulation of what moto lacks, as one object: state, scenario and the handler table.

Owns wiring the emulated services together (fleet, SSM, Inspector account status, CIS scans,
reports) around one clock and the scenario in force, the table (service, operation) -> handler,
the hooks that must run after moto serves some operations, and resetting all of it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from urllib.parse import parse_qs

from pipeline.localaws import kms
from pipeline.localaws.cis_report import ReportStore
from pipeline.localaws.clock import Clock
from pipeline.localaws.context import Handler
from pipeline.localaws.ebs_keys import EbsKeys
from pipeline.localaws.fleet import Fleet
from pipeline.localaws.inspector_account import InspectorAccounts
from pipeline.localaws.inspector_cis import CisService
from pipeline.localaws.inspector_packages import PackageScanService
from pipeline.localaws.profiles import ManifestSource
from pipeline.localaws.run_command import RunCommandService
from pipeline.localaws.scenario import FaultPlan, Scenario
from pipeline.localaws.ssm import SsmService
from pipeline.localaws.wire import AwsRequest


class Emulation:
    """Inspector CIS + activation, SSM registration, for one account, all regions."""

    def __init__(
        self, account_id: str, clock: Clock, scenario: Scenario, manifests: ManifestSource
    ) -> None:
        self.account_id = account_id
        self.clock = clock
        self.lock = threading.RLock()
        self._initial = scenario
        self._initial_manifests = manifests
        self._scenario = scenario
        self.faults = FaultPlan(scenario.faults)
        self.fleet = Fleet(account_id, clock.now)
        self.reports = ReportStore()
        self.ssm = SsmService(self.fleet, self.scenario)
        self.accounts = InspectorAccounts(self.scenario)
        self.cis = CisService(
            self.fleet,
            self.scenario,
            manifests,
            self.reports,
            lambda region, now: self.accounts.status(region, "ec2", now) == "ENABLED",
        )
        self.commands = RunCommandService(self.fleet, self.scenario)  # SSM Run Command
        self.packages = PackageScanService(
            self.fleet,
            self.scenario,
            lambda region, now: self.accounts.enabled_since(region, "ec2", now),
        )
        self.handlers: dict[tuple[str, str], Handler] = {
            **{("inspector2", op): h for op, h in self.accounts.operations().items()},
            **{("inspector2", op): h for op, h in self.cis.operations().items()},
            **{("ssm", op): h for op, h in self.ssm.operations().items()},
            **{("ssm", op): h for op, h in self.commands.operations().items()},
            **{("inspector2", op): h for op, h in self.packages.operations().items()},
            **{("kms", op): h for op, h in kms.operations().items()},  # MessageType=DIGEST
        }
        # EBS encryption of copies and sharing, as AWS enforces it: ``ebs.check(request,
        # caller account)`` runs before moto and raises the error AWS would answer.
        self.ebs = EbsKeys(account_id)
        # Run after moto served (service, operation) successfully.
        self.after_moto: dict[tuple[str, str], Callable[[AwsRequest], None]] = {
            ("ec2", "RunInstances"): self._after_run_instances,
            ("ec2", "CopyImage"): self.ebs.after_copy,
        }

    def _after_run_instances(self, request: AwsRequest) -> None:
        form = parse_qs(request.body.decode("utf-8", "replace"))
        profile = {
            key: form[f"IamInstanceProfile.{key}"][0]
            for key in ("Name", "Arn")
            if f"IamInstanceProfile.{key}" in form
        }
        self.fleet.note_launches(request.region or "us-east-1", profile or None)

    def scenario(self) -> Scenario:
        return self._scenario

    def load_scenario(self, scenario: Scenario) -> None:
        """Put ``scenario`` in force: fresh fault counters, Inspector activation as it says."""
        with self.lock:
            self._scenario = scenario
            self.faults = FaultPlan(scenario.faults)
            self.accounts.reset()

    def use_manifests(self, manifests: ManifestSource | None) -> None:
        """Derive host profiles from ``manifests`` (None: the source given at start-up)."""
        with self.lock:
            self.cis.manifests = manifests or self._initial_manifests

    def reset(self) -> None:
        """Forget all emulated state; the start-up scenario and manifests are in force again."""
        with self.lock:
            self.use_manifests(None)
            self.fleet.reset()
            self.reports.reset()
            self.cis.reset()
            self.commands.reset()
            self.ebs.reset()
            self.load_scenario(self._initial)
