"""The only module that touches moto's internals: its WSGI app, its backends, its reset.

Owns reading what the emulation needs from moto's in-process state (running instances, their
tags, AMIs and instance-profile roles), writing the seed into it (AMIs, public SSM parameters),
enabling AWS managed policies, and resetting it. ``self_check`` lists every internal used here,
so a moto upgrade that moves one fails loudly (tests/localaws/test_moto_internals.py).
"""

from __future__ import annotations

import datetime as dt
import importlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

ACCOUNT_ID = "123456789012"  # moto's default account (moto.core.DEFAULT_ACCOUNT_ID)

# (module, attribute) pairs this module relies on; checked by self_check().
INTERNALS: tuple[tuple[str, str], ...] = (
    ("moto.core", "DEFAULT_ACCOUNT_ID"),
    ("moto.core.base_backend", "AccountSpecificBackend._generate_regions.cache_clear"),
    ("moto.core.base_backend", "BackendDict"),
    ("moto.core.base_backend", "BaseBackend"),
    ("moto.core.base_backend", "backend_lock"),
    ("moto.core.config", "default_user_config"),
    ("moto.core.model_instances", "reset_model_data"),
    ("moto.moto_server.werkzeug_app", "DomainDispatcherApplication"),
    ("moto.moto_server.werkzeug_app", "MotoRequestHandler"),
    ("moto.moto_server.werkzeug_app", "create_backend_app"),
    ("moto.ec2.models", "ec2_backends"),
    ("moto.ec2.models.amis", "Ami"),
    ("moto.ec2.models.amis", "AmiBackend.copy_image"),
    ("moto.ec2.models.subnets", "Subnet._base_avail_ip_iterator.cache_clear"),
    ("moto.iam.models", "iam_backends"),
    ("moto.iam.exceptions", "NotFoundException"),
    ("moto.ssm.models", "ssm_backends"),
    ("moto.ssm.models", "Parameter"),
    ("moto.kms.models", "kms_backends"),
    ("moto.settings", "load_iam_aws_managed_policies"),
)
# Keyword arguments we pass to constructors whose signatures moto may change.
SIGNATURES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    (
        "moto.ec2.models.amis",
        "Ami",
        ("ec2_backend", "ami_id", "name", "description", "owner_id", "owner_alias", "public")
        + ("virtualization_type", "architecture", "creation_date", "hypervisor")
        + ("root_device_type", "root_device_name", "region_name", "boot_mode"),
    ),
    ("moto.moto_server.werkzeug_app", "DomainDispatcherApplication.get_application", ("environ",)),
    (
        "moto.ec2.models.amis",
        "AmiBackend.copy_image",
        ("self", "source_image_id", "source_region", "name", "description"),
    ),
    (
        "moto.ssm.models",
        "Parameter",
        ("account_id", "name", "value", "parameter_type", "description", "allowed_pattern")
        + ("keyid", "last_modified_date", "version", "data_type"),
    ),
)


def _get(module: str, name: str) -> Any:
    """``module.name``, where ``name`` may be dotted (``Class.method``)."""
    target: Any = importlib.import_module(module)
    for part in name.split("."):
        target = getattr(target, part)
    return target


def self_check() -> list[str]:
    """Every moto internal this module uses that is missing or changed (empty: all present)."""
    return import_problems() + _attribute_problems()


def import_problems() -> list[str]:
    """Missing modules/names and changed constructor signatures (no backend is created)."""
    problems = []
    for module, name in INTERNALS:
        try:
            _get(module, name)
        except (ImportError, AttributeError) as exc:
            problems.append(f"{module}.{name}: {exc}")
    for module, name, params in SIGNATURES:
        try:
            accepted = inspect.signature(_get(module, name)).parameters
        except (ImportError, AttributeError) as exc:
            problems.append(f"{module}.{name}: {exc}")
            continue
        missing = [p for p in params if p not in accepted]
        if missing:
            problems.append(f"{module}.{name}(): no parameter(s) {', '.join(missing)}")
    return problems


def _attribute_problems() -> list[str]:
    """Backend attributes read below, checked on fresh backends of a throwaway account."""
    account = "000000000000"
    probes: list[tuple[str, Callable[[], Any], tuple[str, ...]]] = [
        (
            "ec2 backend",
            lambda: ec2(account, "us-east-1"),
            ("amis", "tags", "all_instances", "associate_iam_instance_profile", "snapshots"),
        ),
        (
            "kms backend",
            lambda: kms(account, "us-east-1"),
            ("alias_exists", "create_alias", "create_key", "describe_key"),
        ),
        ("iam backend", lambda: iam(account), ("get_instance_profile_by_arn",)),
        ("ssm backend", lambda: ssm(account, "us-east-1"), ("_parameters",)),
        ("BackendDict", lambda: _get("moto.core.base_backend", "BackendDict"), ("_instances",)),
    ]
    problems = []
    for label, make, attributes in probes:
        target = make()
        problems += [f"{label}: no attribute {a!r}" for a in attributes if not hasattr(target, a)]
    for backends in _get("moto.core.base_backend", "BackendDict")._instances:
        backends.pop(account, None)
    return problems


# ---------------------------------------------------------------------------------------------
# Server plumbing


def make_app() -> Any:
    """moto's own WSGI application (the one ThreadedMotoServer serves)."""
    dispatcher = _get("moto.moto_server.werkzeug_app", "DomainDispatcherApplication")
    return dispatcher(_get("moto.moto_server.werkzeug_app", "create_backend_app"))


def warm_apps(app: Any, services: tuple[str, ...], region: str) -> None:
    """Build moto's per-service Flask apps now rather than on the first request (EC2's: ~0.25 s)."""
    for service in services:
        scope = f"Credential={ACCOUNT_ID}/20250101/{region}/{service}/aws4_request"
        environ = {
            "PATH_INFO": "/",
            "REQUEST_METHOD": "POST",
            "HTTP_AUTHORIZATION": f"AWS4-HMAC-SHA256 {scope}, SignedHeaders=host, Signature=0",
        }
        app.get_application(environ)


def request_handler() -> type:
    """moto's request handler (keeps header spelling), without per-request log lines."""
    base: type = _get("moto.moto_server.werkzeug_app", "MotoRequestHandler")

    def log_request(self: Any, code: Any = "-", size: Any = "-") -> None:
        return None

    return type("QuietMotoRequestHandler", (base,), {"log_request": log_request})


def enable_managed_policies() -> None:
    """What MOTO_IAM_LOAD_MANAGED_POLICIES=true does, without changing the process environment."""
    config = _get("moto.core.config", "default_user_config")
    config.setdefault("iam", {})["load_aws_managed_policies"] = True


def record_copy_sources() -> None:
    """Make DescribeImages say what a CopyImage copy was copied from, as EC2 does
    (``SourceImageId``, ``SourceImageRegion``; absent for CreateImage and RegisterImage images):
    moto 5 serialises those fields when its Ami has the attributes, but CopyImage never sets
    them. Wraps moto's ``AmiBackend.copy_image`` once per process."""
    backend = _get("moto.ec2.models.amis", "AmiBackend")
    original = backend.copy_image
    if getattr(original, "_records_source", False):
        return

    def copy_image(
        self: Any,
        source_image_id: str,
        source_region: str,
        name: str | None = None,
        description: str | None = None,
    ) -> Any:
        ami = original(self, source_image_id, source_region, name, description)
        ami.source_image_id = source_image_id
        ami.source_image_region = source_region
        return ami

    copy_image._records_source = True  # type: ignore[attr-defined]
    backend.copy_image = copy_image


def reset() -> None:
    """moto's reset (``POST /moto-api/reset``): forget every backend of every service.

    moto's own reset first re-initialises each regional backend and then discards it; that
    re-initialisation costs ~0.4 s (EC2 reloads its AMI catalogue) for nothing, so it is only
    done for backends that override ``reset`` to release resources (S3, Batch). Two of moto's
    caches are keyed by backend objects and would keep every discarded EC2 backend (with its
    ~1,300 AMIs) alive, growing memory and GC time with each reset: the regions of an
    ``AccountSpecificBackend`` (an lru_cache of 128) and each subnet's IP iterator (unbounded).
    """
    backend_dict = _get("moto.core.base_backend", "BackendDict")
    plain_reset = _get("moto.core.base_backend", "BaseBackend").reset
    with _get("moto.core.base_backend", "backend_lock"):
        for backends in list(backend_dict._instances):
            for per_account in list(backends.values()):
                for regional in list(per_account.values()):
                    if type(regional).reset is not plain_reset:
                        regional.reset()
            backends.clear()
        backend_dict._instances.clear()
        _get("moto.core.base_backend", "AccountSpecificBackend._generate_regions.cache_clear")()
        _get("moto.ec2.models.subnets", "Subnet._base_avail_ip_iterator.cache_clear")()
    _get("moto.core.model_instances", "reset_model_data")()
    enable_managed_policies()


# ---------------------------------------------------------------------------------------------
# Backends


def ec2(account: str, region: str) -> Any:
    return _get("moto.ec2.models", "ec2_backends")[account][region]


def iam(account: str) -> Any:
    return _get("moto.iam.models", "iam_backends")[account]["aws"]


def ssm(account: str, region: str) -> Any:
    return _get("moto.ssm.models", "ssm_backends")[account][region]


def kms(account: str, region: str) -> Any:
    """moto's KMS backend (keys' ``private_key.private_key`` is a cryptography key)."""
    return _get("moto.kms.models", "kms_backends")[account][region]


def known_region(region: str) -> bool:
    """True for regions moto's EC2 knows (seeding any other region would fail)."""
    return region in _get("moto.ec2.models", "ec2_backends")[ACCOUNT_ID].regions


@dataclass(frozen=True, slots=True)
class InstanceView:
    """An EC2 instance as the emulation sees it."""

    instance_id: str
    state: str
    image_id: str
    tags: dict[str, str]
    profile_arn: str | None
    private_ip: str | None


def instances(account: str, region: str) -> list[InstanceView]:
    """Every instance of the region, in any state."""
    backend = ec2(account, region)
    views = []
    for instance in backend.all_instances():
        profile = getattr(instance, "iam_instance_profile", None) or {}
        views.append(
            InstanceView(
                instance_id=instance.id,
                state=instance.state,
                image_id=instance.image_id,
                tags=dict(backend.tags.get(instance.id, {})),
                profile_arn=profile.get("Arn") if isinstance(profile, dict) else None,
                private_ip=instance.private_ip,
            )
        )
    return views


def associate_profile(account: str, region: str, instance_id: str, profile: dict[str, str]) -> None:
    """Attach an instance profile given as ``{"Name": ...}`` or ``{"Arn": ...}``."""
    ec2(account, region).associate_iam_instance_profile(
        instance_id=instance_id,
        iam_instance_profile_name=profile.get("Name"),
        iam_instance_profile_arn=profile.get("Arn"),
    )


def set_launch_time(account: str, region: str, instance_id: str, at: float) -> None:
    """Make DescribeInstances' ``LaunchTime`` the emulation clock's launch time (moto stamps
    wall time), so it agrees with every time the emulation reports about the instance."""
    for instance in ec2(account, region).all_instances():
        if instance.id == instance_id:
            instance.launch_time = dt.datetime.fromtimestamp(at, dt.UTC).replace(tzinfo=None)


def image_tags(account: str, region: str, image_id: str) -> dict[str, str] | None:
    """The tags of an AMI, or None when the region has no such AMI."""
    backend = ec2(account, region)
    if image_id not in backend.amis:
        return None
    return dict(backend.tags.get(image_id, {}))


def has_image(account: str, region: str, image_id: str) -> bool:
    return image_id in ec2(account, region).amis


@dataclass(frozen=True, slots=True)
class RoleView:
    name: str
    policy_arns: frozenset[str]
    # Identity-policy documents (JSON text or parsed): each attached managed policy's default
    # version, then every inline policy.
    documents: tuple[Any, ...] = ()


def profile_role(account: str, profile_arn: str) -> RoleView | None:
    """The (first) role of an instance profile, its managed policies and its policy documents."""
    backend = iam(account)
    try:
        profile = backend.get_instance_profile_by_arn(profile_arn)
    except _get("moto.iam.exceptions", "NotFoundException"):  # the profile was deleted
        return None
    if not profile.roles:
        return None
    role = profile.roles[0]
    documents: list[Any] = []
    for policy in role.managed_policies.values():
        documents += [v.document for v in policy.versions if v.is_default]
    documents += list(role.policies.values())
    return RoleView(role.name, frozenset(role.managed_policies), tuple(documents))


@dataclass(frozen=True, slots=True)
class ImageSpec:
    """A public AMI to register (the seeded EKS-optimized base images)."""

    image_id: str
    name: str
    description: str
    owner_id: str
    architecture: str
    created: dt.datetime
    boot_mode: str


def register_image(account: str, region: str, spec: ImageSpec) -> None:
    backend = ec2(account, region)
    ami_class = _get("moto.ec2.models.amis", "Ami")
    backend.amis[spec.image_id] = ami_class(
        backend,
        spec.image_id,
        name=spec.name,
        description=spec.description,
        owner_id=spec.owner_id,
        owner_alias="amazon",
        public=True,
        virtualization_type="hvm",
        architecture=spec.architecture,
        creation_date=spec.created,
        hypervisor="xen",
        root_device_type="ebs",
        root_device_name="/dev/xvda",
        region_name=f"{region}a",
        boot_mode=spec.boot_mode,
    )


def put_public_parameter(account: str, region: str, name: str, value: str, data_type: str) -> None:
    """A read-only ``/aws/service/...`` parameter (PutParameter refuses the ``aws`` prefix)."""
    backend = ssm(account, region)
    if name in backend._parameters:
        return
    parameter = _get("moto.ssm.models", "Parameter")
    backend._parameters[name].append(
        parameter(
            account_id=account,
            name=name,
            value=value,
            parameter_type="String",
            description=None,
            allowed_pattern=None,
            keyid=None,
            last_modified_date=dt.datetime.now(dt.UTC).replace(tzinfo=None),
            version=1,
            data_type=data_type,
        )
    )


# ---------------------------------------------------------------------------------------------
# EBS encryption of AMI snapshots and the KMS keys behind it (pipeline.localaws.ebs_keys)


@dataclass(frozen=True, slots=True)
class KeyView:
    """A KMS key as the EBS emulation judges it."""

    arn: str
    state: str
    manager: str
    policy: str


def kms_key(account: str, region: str, key_id: str) -> KeyView | None:
    """The key (ID, ARN, alias or alias ARN) of the region, or None."""
    try:
        key = kms(account, region).describe_key(key_id)
    except Exception:  # moto's NotFoundException and friends  # noqa: BLE001
        return None
    return KeyView(key.arn, str(key.key_state), str(key.key_manager), str(key.policy or ""))


def aws_managed_ebs_key(account: str, region: str) -> str:
    """The ARN of the region's AWS-managed EBS key (``alias/aws/ebs``), made on first use as
    AWS does, with KeyManager AWS (moto would make it a customer key)."""
    backend = kms(account, region)
    if not backend.alias_exists("alias/aws/ebs"):
        key = backend.create_key(
            policy="",
            key_usage="ENCRYPT_DECRYPT",
            key_spec="SYMMETRIC_DEFAULT",
            description="Default key that protects my EBS volumes when no other key is defined",
            tags=None,
        )
        backend.create_alias(key.id, "alias/aws/ebs")
    key = backend.describe_key("alias/aws/ebs")
    key.key_manager = "AWS"
    return str(key.arn)


def image_snapshots(account: str, region: str, image_id: str) -> list[str]:
    """The snapshot IDs behind an AMI of the region ([] when there is no such AMI)."""
    ami = ec2(account, region).amis.get(image_id)
    return [ami.ebs_snapshot.id] if ami is not None else []


def image_launch_users(account: str, region: str, image_id: str) -> set[str] | None:
    """The accounts with launch permission on the AMI (``all`` when public), None if absent."""
    ami = ec2(account, region).amis.get(image_id)
    if ami is None:
        return None
    return {str(p.get("UserId") or p.get("Group")) for p in ami.launch_permissions}


def copies_of(account: str, region: str, source_id: str) -> list[str]:
    """The AMIs of the region that CopyImage made from ``source_id``."""
    amis = ec2(account, region).amis
    return [i for i, a in amis.items() if getattr(a, "source_image_id", None) == source_id]


def snapshot_key(account: str, region: str, snapshot_id: str) -> str | None:
    """The KMS key ARN of an encrypted snapshot; None when unencrypted or absent."""
    snap = ec2(account, region).snapshots.get(snapshot_id)
    return str(snap.kms_key_id) if snap is not None and snap.encrypted else None


def encrypt_snapshot(account: str, region: str, snapshot_id: str, key_arn: str) -> None:
    """Record that the snapshot is encrypted with ``key_arn`` (DescribeSnapshots shows it)."""
    snap = ec2(account, region).snapshots.get(snapshot_id)
    if snap is not None:
        snap.encrypted = True
        snap.kms_key_id = key_arn


def key_grants(account: str, region: str, key_id: str) -> list[tuple[str, list[str]]]:
    """(grantee principal, operations) of each grant on the key ([] when there is no key)."""
    try:
        key = kms(account, region).describe_key(key_id)
    except Exception:  # moto's NotFoundException  # noqa: BLE001
        return []
    return [(str(g.grantee_principal), list(g.operations)) for g in key.grants.values()]


def seed_network(account: str, region: str, isolated_name: str) -> None:
    """Make the region's network look like a real account's (idempotent): the default VPC's main
    route table sends 0.0.0.0/0 to an attached internet gateway, and a VPC named
    ``isolated_name`` has one subnet (same name) with no route out and no VPC endpoint."""
    backend = ec2(account, region)
    vpcs = backend.describe_vpcs(filters={"is-default": ["true"]})
    if vpcs:
        vpc_id = vpcs[0].id
        (main,) = backend.describe_route_tables(
            filters={"vpc-id": [vpc_id], "association.main": ["true"]}
        )
        routes = main.routes.values() if isinstance(main.routes, dict) else main.routes
        if not any(getattr(r, "destination_cidr_block", None) == "0.0.0.0/0" for r in routes):
            igw = backend.create_internet_gateway()
            backend.attach_internet_gateway(igw.id, vpc_id)
            backend.create_route(main.id, "0.0.0.0/0", gateway_id=igw.id)
    if backend.describe_vpcs(filters={"tag:Name": [isolated_name]}):
        return
    vpc = backend.create_vpc("10.99.0.0/16", tags=[{"Key": "Name", "Value": isolated_name}])
    subnet = backend.create_subnet(vpc.id, "10.99.0.0/24", availability_zone=f"{region}a")
    backend.create_tags([subnet.id], {"Name": isolated_name})


def resource_tags(account: str, region: str, resource_id: str) -> dict[str, str]:
    """The tags an EC2 resource carries now (moto's tag store), for IAM's aws:ResourceTag."""
    return dict(ec2(account, region).tags.get(resource_id, {}))
