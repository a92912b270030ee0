"""Launch: one tagged test instance per AMI (an earlier run's reused), in the run's own security
group (no ingress) unless one is given; each is terminated at cleanup."""

from __future__ import annotations

from contextlib import ExitStack
from datetime import datetime, timedelta
from typing import Any

from pipeline import heartbeat
from pipeline.aws import AwsClients, ec2
from pipeline.aws.images import Image
from pipeline.tags import HEARTBEAT_TAG, MANAGED_TAG, MANAGED_VALUE
from pipeline.validate.cleanup import quietly, terminate
from pipeline.validate.preflight import Run
from pipeline.validate.settings import Runtime, fresh_run

PIPELINE_NAME = "eks-cis-ami-pipeline"


def run_tags(run_id: str, now: datetime) -> dict[str, str]:
    """The tags on everything the run creates: ``invoke reap`` finds a killed run's by them."""
    return {
        ec2.RUN_TAG: run_id,
        "cis-validate:pipeline": PIPELINE_NAME,
        MANAGED_TAG: MANAGED_VALUE,
        HEARTBEAT_TAG: heartbeat.stamp(now),
    }


def launch_all(
    clients: AwsClients,
    run: Run,
    rt: Runtime,
    context: dict[str, Any],
    cleanup: ExitStack,
    beat: heartbeat.Heartbeat,
) -> dict[str, Image]:
    """Launch (or reuse) the test instances and wait until they run: instance ID -> its AMI.

    Each instance goes into ``context["amis"]``. What an earlier run left (a resumed run's
    instances and security group) is stamped with a fresh heartbeat as soon as it is found,
    before anything is launched: it still carries the killed run's stamp, which ``invoke reap``
    would take for a dead run's. What this run creates carries a fresh stamp from the start.
    The heartbeat then beats every ``heartbeat.INTERVAL`` once the instances exist.
    """
    settings, run_id = run.settings, run.run_id
    placed = run.network  # preflight checked the subnet, the security group and the route to SSM
    vpc_id, subnet_id = placed.vpc_id, placed.subnet_id
    tags = run_tags(run_id, rt.now())
    # A run ID made by this run names nothing yet: look for an earlier run's resources only
    # when the ID came from outside (--run-id, the chain's build).
    fresh = fresh_run(settings)
    sg_id, sg_found = settings.security_group_id, False
    if sg_id is None:
        sg_id, sg_found = _run_security_group(
            clients, rt, vpc_id, run_id, tags, cleanup, fresh=fresh
        )
    existing = {} if fresh else {i.ami_id: i.id for i in ec2.run_instances(clients, run_id)}
    reused = [existing[image.id] for image in run.images if image.id in existing]
    beat.add(([sg_id] if sg_found else []) + reused)
    beat.beat()  # the run's first beat: the earlier run's resources are this run's from now on
    if not settings.security_group_id:
        beat.add([sg_id])
    expires = (rt.now() + timedelta(minutes=settings.ttl_minutes)).strftime("%Y-%m-%dT%H:%M:%SZ")
    launched: dict[str, Image] = {}
    for image in run.images:
        instance_id = existing.get(image.id)
        if instance_id:
            rt.echo(f"{image.id}: reusing test instance {instance_id} of run {run_id}")
        else:
            spec = ec2.LaunchSpec(
                ami_id=image.id,
                instance_type=settings.instance_types[str(image.architecture)],
                instance_profile=run.profile.name,
                subnet_id=subnet_id,
                security_group_id=sg_id,
                tags={
                    **tags,
                    "cis-validate:ami-id": image.id,
                    "cis-validate:expires-at": expires,
                    "Name": f"cis-validate {image.id}",
                },
                ttl_minutes=settings.ttl_minutes,
                public_ip=placed.public_ip,
                root_device=(image.root_device_name, image.root_volume_size),
            )
            instance_id = ec2.launch(clients, spec)
            rt.echo(f"{image.id}: launched test instance {instance_id}")
        launched[instance_id] = image
        context["amis"].append(
            {
                "ami": image.id,
                "instance": instance_id,
                "platform": image.platform.value if image.platform else None,
                "architecture": image.architecture,
            }
        )
    ids = list(launched)
    cleanup.callback(terminate, clients, rt, ids)
    beat.add(ids)
    beat.start()
    ec2.wait_running(clients, ids)
    return launched


def _run_security_group(
    clients: AwsClients,
    rt: Runtime,
    vpc_id: str,
    run_id: str,
    tags: dict[str, str],
    cleanup: ExitStack,
    *,
    fresh: bool = False,
) -> tuple[str, bool]:
    """The run's own security group (no ingress), found or created, deleted at cleanup: its
    ID, and whether an earlier run made it.

    ``fresh``: the run ID is this run's own, so no group can carry its name yet.
    """
    name = f"cis-validate-{run_id}"
    sg_id = None if fresh else ec2.find_security_group(clients, vpc_id, name)
    found = sg_id is not None
    if sg_id is None:
        sg_id = ec2.create_security_group(clients, vpc_id, name, tags)
    cleanup.callback(
        quietly, rt, f"delete security group {sg_id}", ec2.delete_security_group, clients, sg_id
    )
    return sg_id, found
