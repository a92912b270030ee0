"""The EC2 instances as the emulated services see them: moto's view plus what moto does not track.

Owns, per instance, when its SSM agent started (the emulation clock at launch, noted after each
RunInstances) and which host profile it runs (decided once, from its AMI at launch), and joins
them with moto's state (tags, state, instance-profile role and the actions its policies grant).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from pipeline import iam_eval
from pipeline.localaws import moto_state, profiles, seed
from pipeline.localaws.profiles import HostProfile


@dataclass(frozen=True, slots=True)
class Host:
    """One instance, everything the SSM and Inspector emulations decide on."""

    instance_id: str
    region: str
    state: str
    image_id: str
    tags: dict[str, str]
    private_ip: str | None
    launched_at: float
    profile: HostProfile | None  # None: not an OS Inspector's CIS scans support
    role_name: str | None
    policy_arns: frozenset[str]
    granted: frozenset[str] = frozenset()  # which of iam_eval.SCAN_ROLE_ACTIONS the role allows

    @property
    def ssm_capable(self) -> bool:
        """The role grants what the SSM agent needs to register (iam_eval.SSM_CORE_ACTIONS),
        by whatever policy: AWS managed, customer managed or inline."""
        return self.granted.issuperset(iam_eval.SSM_CORE_ACTIONS)

    @property
    def cis_capable(self) -> bool:
        """The role grants the CIS plugin's session actions (iam_eval.CIS_SESSION_ACTIONS)."""
        return self.granted.issuperset(iam_eval.CIS_SESSION_ACTIONS)


@dataclass(frozen=True, slots=True)
class _Launch:
    at: float
    profile: HostProfile | None


class Fleet:
    """Hosts per region; ``note_launches`` after RunInstances, ``hosts`` when deciding."""

    def __init__(self, account_id: str, now: Callable[[], float]) -> None:
        self._account = account_id
        self._now = now
        self._lock = threading.Lock()
        self._launches: dict[tuple[str, str], _Launch] = {}

    def reset(self) -> None:
        with self._lock:
            self._launches.clear()

    def note_launches(self, region: str, instance_profile: dict[str, str] | None = None) -> None:
        """Note launch time and host profile of instances not seen before (after RunInstances).

        moto associates a RunInstances ``IamInstanceProfile`` with the first instance only;
        AWS gives it to every instance launched, so the others get it here.
        """
        with self._lock:
            new = [
                view
                for view in moto_state.instances(self._account, region)
                if (region, view.instance_id) not in self._launches
            ]
        if instance_profile:
            for view in new:
                if view.profile_arn is None and view.state != "terminated":
                    moto_state.associate_profile(
                        self._account, region, view.instance_id, instance_profile
                    )
        self.hosts(region)

    def hosts(self, region: str) -> list[Host]:
        """Every instance of ``region`` (any state); new ones are noted as launched now."""
        roles: dict[str, moto_state.RoleView | None] = {}
        hosts = []
        for view in moto_state.instances(self._account, region):
            arn = view.profile_arn
            if arn is not None and arn not in roles:
                roles[arn] = moto_state.profile_role(self._account, arn)
            hosts.append(self._host(region, view, roles.get(arn) if arn else None))
        return hosts

    def _host(
        self, region: str, view: moto_state.InstanceView, role: moto_state.RoleView | None
    ) -> Host:
        launch = self._launch(region, view)
        return Host(
            instance_id=view.instance_id,
            region=region,
            state=view.state,
            image_id=view.image_id,
            tags=view.tags,
            private_ip=view.private_ip,
            launched_at=launch.at,
            profile=launch.profile,
            role_name=role.name if role else None,
            policy_arns=role.policy_arns if role else frozenset(),
            granted=_granted(role),
        )

    def _launch(self, region: str, view: moto_state.InstanceView) -> _Launch:
        key = (region, view.instance_id)
        with self._lock:
            known = self._launches.get(key)
            if known is None:
                known = _Launch(self._now(), self.image_profile(region, view.image_id))
                self._launches[key] = known
                # DescribeInstances' LaunchTime on the same clock as everything emulated
                moto_state.set_launch_time(self._account, region, view.instance_id, known.at)
            return known

    def image_profile(self, region: str, image_id: str) -> HostProfile | None:
        """The host profile an instance of ``image_id`` runs (see profiles.from_image)."""
        tags = moto_state.image_tags(self._account, region, image_id) or {}
        base = seed.base_image(region, image_id)
        return profiles.from_image(tags, base.platform if base else None)


def _granted(role: moto_state.RoleView | None) -> frozenset[str]:
    """The scan-role actions ``role``'s policies allow, decided by iam_eval (not policy names)."""
    if role is None:
        return frozenset()
    return iam_eval.evaluate(role.documents, iam_eval.SCAN_ROLE_ACTIONS).allowed
