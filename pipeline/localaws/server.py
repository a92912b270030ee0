"""The local AWS server: one loopback port, the emulation in front of moto, and its lifecycle.

Owns the WSGI middleware (control endpoints, report downloads, fault injection, emulated
operations with model validation of requests and responses, everything else to moto), the
per-region seeding on first contact, the request log, and starting/stopping the server
(moto's own app and request handler on werkzeug's threaded server, 127.0.0.1 only).
"""

from __future__ import annotations

import collections
import logging
import socket
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any

from werkzeug.serving import BaseWSGIServer, make_server

from pipeline.errors import ConfigError
from pipeline.localaws import iam_gate, model, moto_state, seed, wire
from pipeline.localaws import scenario as scenarios
from pipeline.localaws.clock import Clock, SystemClock
from pipeline.localaws.context import Ctx, Handler
from pipeline.localaws.emulation import Emulation
from pipeline.localaws.profiles import ManifestSource, shipped_manifest
from pipeline.localaws.scenario import Scenario
from pipeline.localaws.wire import AwsRequest, HttpResponse, ServiceError, WsgiEnviron

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
REGION = "us-east-1"
ACCESS_KEY = "testing"
SECRET_KEY = "testing"
CONTROL_PREFIX = "/_localaws/"
EMULATED_SERVICES = ("inspector2", "ssm")
# Services whose state holds the seed: their requests seed the region first.
SEEDED_SERVICES = frozenset({"ec2", "ssm"})
# moto services whose apps are built during warm-up (the rest on their first request).
WARM_SERVICES = ("ec2", "iam", "ssm", "sts", "kms", "inspector2")
ScenarioLike = Scenario | Mapping[str, Any] | str | Path | None


@dataclass(frozen=True, slots=True)
class Call:
    """One request the server answered."""

    service: str | None
    operation: str | None
    region: str | None
    status: int
    by: str  # emulation | moto | fault | control
    at: float  # emulation clock


class LocalAws:
    """moto in server mode plus the project's emulation, on ``http://127.0.0.1:PORT``."""

    region = REGION
    account_id = moto_state.ACCOUNT_ID

    def __init__(
        self,
        port: int = 0,
        scenario: ScenarioLike = None,
        *,
        clock: Clock | None = None,
        manifests: ManifestSource = shipped_manifest,
        check_responses: bool = True,
    ) -> None:
        self._port = port
        self.clock: Clock = clock or SystemClock()
        self.emulation = Emulation(
            self.account_id, self.clock, scenarios.coerce(scenario), manifests
        )
        self.check_responses = check_responses
        self._calls: collections.deque[Call] = collections.deque(maxlen=10_000)
        self._seeded: set[str] = set()
        self._seed_lock = threading.RLock()
        self._ready = threading.Event()
        self._server: BaseWSGIServer | None = None
        self._threads: list[threading.Thread] = []
        self._moto: Any = None
        self._broken: list[str] = []

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> LocalAws:
        """Listen on 127.0.0.1 and return at once; moto warms up (and seeds) in the background.

        AWS requests that arrive before the warm-up finishes wait for it; ``/_localaws/health``
        answers immediately. Raises ConfigError if the port cannot be bound.
        """
        moto_state.enable_managed_policies()
        moto_state.record_copy_sources()  # DescribeImages' SourceImageId, as EC2 gives it
        self._moto = moto_state.make_app()
        listener = _listen(self._port)
        try:
            self._server = make_server(
                HOST,
                self._port,
                self,
                threaded=True,
                request_handler=moto_state.request_handler(),
                fd=listener.fileno(),
            )
        finally:
            listener.close()  # werkzeug works on its own duplicate of the socket
        server = self._server
        self._spawn("localaws-http", lambda: server.serve_forever(poll_interval=0.05))
        self._spawn("localaws-warm-up", self._warm_up)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        for thread in self._threads:
            thread.join(timeout=10)
        self._server = None
        self._threads.clear()

    @property
    def ready(self) -> bool:
        """True once moto is warm and the default regions are seeded."""
        return self._ready.is_set()

    @property
    def problems(self) -> list[str]:
        """moto internals found missing at warm-up (then every AWS request answers 500)."""
        return list(self._broken)

    def wait_ready(self, timeout: float = 60.0) -> LocalAws:
        """Block until moto is warm and the default regions are seeded."""
        if not self._ready.wait(timeout):
            raise TimeoutError(f"local AWS not ready after {timeout} s")
        return self

    def __enter__(self) -> LocalAws:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _spawn(self, name: str, target: Callable[[], None]) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _warm_up(self) -> None:
        try:
            self._broken = moto_state.import_problems()
            if self._broken:
                log.error("local AWS: moto internals changed: %s", "; ".join(self._broken))
                return
            for region in seed.WARM_REGIONS:
                self.ensure_seeded(region)
            moto_state.iam(self.account_id)  # loads the ~1,500 AWS managed policies
            moto_state.warm_apps(self._moto, WARM_SERVICES, self.region)
            for service in EMULATED_SERVICES:
                model.service(service)  # botocore's models of the services the emulation answers
        finally:
            self._ready.set()

    # -- controls ---------------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("local AWS is not running")
        return int(self._server.server_address[1])

    @property
    def endpoint(self) -> str:
        return f"http://{HOST}:{self.port}"

    def env(self) -> dict[str, str]:
        """The environment a client (boto3, AWS CLI) needs to talk to this server."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_DEFAULT_REGION": self.region,
        }

    def reset(self) -> None:
        """moto's reset plus the emulation's state; regions are re-seeded on their next request."""
        self._ready.wait()
        with self._seed_lock, self.emulation.lock:
            moto_state.reset()
            self._seeded.clear()
            self.emulation.reset()
            self._calls.clear()

    def load_scenario(self, scenario: ScenarioLike) -> Scenario:
        """Validate and put a scenario in force (None: the defaults); raises ConfigError."""
        loaded = scenarios.coerce(scenario)
        self.emulation.load_scenario(loaded)
        return loaded

    def use_manifests(self, manifests: ManifestSource | None) -> None:
        """Derive host profiles from other coverage manifests (None: back to the start-up source).

        e.g. ``aws.use_manifests(lambda platform: my_manifest)``; ``reset()`` undoes it.
        """
        self.emulation.use_manifests(manifests)

    def advance(self, seconds: float) -> float:
        """Move the emulation clock forward; returns the new time (epoch seconds)."""
        return self.clock.advance(seconds)

    @property
    def calls(self) -> list[Call]:
        return list(self._calls)

    def count(self, operation: str, service: str | None = None) -> int:
        """How many requests for ``operation`` (of ``service``, if given) the server answered."""
        return sum(c.operation == operation and service in (None, c.service) for c in self._calls)

    def ensure_seeded(self, region: str) -> None:
        """Seed ``region`` unless it already is (and moto still has the seed)."""
        with self._seed_lock:
            if region in self._seeded and moto_state.has_image(
                self.account_id, region, seed.marker(region)
            ):
                return
            if not moto_state.known_region(region):
                return
            seed.seed_region(self.account_id, region)
            self._seeded.add(region)

    # -- WSGI -------------------------------------------------------------------------------

    def __call__(self, environ: WsgiEnviron, start_response: Any) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        control = _CONTROL.get((environ.get("REQUEST_METHOD", "GET"), path))
        if control is not None:
            return self._control(control, environ).send(start_response)
        if path.startswith(CONTROL_PREFIX):
            return self._download(path).send(start_response)
        self._ready.wait()
        request = wire.read_request(environ)
        if request.region and request.service in SEEDED_SERVICES and not self._broken:
            self.ensure_seeded(request.region)
        early = self._refusal(request)
        if early is not None:
            return self._answer(request, early, "fault", start_response)
        handler = self.emulation.handlers.get((request.service or "", request.operation or ""))
        if handler is not None:
            response = self._emulate(request, handler)
            return self._answer(request, response, "emulation", start_response)
        return self._pass_to_moto(request, environ, start_response)

    def _refusal(self, request: AwsRequest) -> HttpResponse | None:
        """The answer when moto is unusable or a scenario fault fires for this call, else None."""
        if self._broken:
            error = ServiceError(
                "InternalFailure", "moto internals changed: " + "; ".join(self._broken)
            )
        elif (denied := self._ec2_iam(request)) is not None:
            error = ServiceError("UnauthorizedOperation", denied, status=403)
        else:
            fault = self.emulation.faults.take(request.service, request.operation)
            if fault is None:
                return None
            error = wire.fault_error(request.service, request.operation, fault.error, fault.message)
        return wire.error(request.protocol, request.service, error, request.request_id)

    def _ec2_iam(self, request: AwsRequest) -> str | None:
        """EC2's UnauthorizedOperation under the scenario's ``iam.ec2_policy`` (iam_gate)."""
        policy = self.emulation.scenario().ec2_policy
        if policy is None or request.service != "ec2":
            return None
        region = request.region or self.region
        tags = partial(moto_state.resource_tags, self.account_id, region)
        return iam_gate.refusal(
            policy, request.operation, request.body, region, self.account_id, tags
        )

    def _answer(
        self, request: AwsRequest, response: HttpResponse, by: str, start_response: Any
    ) -> list[bytes]:
        self._record(request, response.status, by)
        return response.send(start_response)

    def _record(self, request: AwsRequest, status: int, by: str) -> None:
        self._calls.append(
            Call(request.service, request.operation, request.region, status, by, self.clock.now())
        )

    def _emulate(self, request: AwsRequest, handler: Handler) -> HttpResponse:
        assert request.service is not None and request.operation is not None
        op = model.operation(request.service, request.operation)
        try:
            params = request.json()
            problems = model.check(op.input_shape, params)
            if problems:
                raise _invalid(request.service, problems)
            ctx = Ctx(
                region=request.region or self.region,
                account_id=self.account_id,
                now=self.clock.now(),
                base_url=f"http://{request.host}",
                request_id=request.request_id,
            )
            with self.emulation.lock:
                payload = handler(ctx, params)
            self._check_output(request, op.output_shape, payload)
            return wire.result(
                request.protocol or "rest-json",
                payload,
                request.request_id,
                int(op.http.get("responseCode", 200)),
            )
        except ServiceError as err:
            return wire.error(request.protocol, request.service, err, request.request_id)
        except Exception as exc:  # a bug in the emulation: answer 500 like a service would, loudly
            log.exception("local AWS failed on %s", request.operation)
            bug = ServiceError("InternalServerException", f"local AWS bug: {exc!r}", status=500)
            return wire.error(request.protocol, request.service, bug, request.request_id)

    def _check_output(self, request: AwsRequest, shape: Any, payload: Mapping[str, Any]) -> None:
        if not self.check_responses:
            return
        problems = model.check(shape, payload, output=True)
        if problems:
            log.error("local AWS produced an invalid %s response: %s", request.operation, problems)
            raise ServiceError(
                "InternalServerException",
                f"local AWS bug: response breaks the model: {model.describe(problems)}",
                status=500,
            )

    def _pass_to_moto(
        self, request: AwsRequest, environ: WsgiEnviron, start_response: Any
    ) -> Iterable[bytes]:
        statuses: list[int] = []

        def capture(status: str, headers: Any, exc_info: Any = None) -> Any:
            statuses.append(int(status.split(" ", 1)[0]))
            return (
                start_response(status, headers, exc_info)
                if exc_info
                else start_response(status, headers)
            )

        # moto otherwise finds the account by looking the access key up in IAM, which builds the
        # IAM backends of all five partitions (1,500 managed policies each, ~0.85 s after a reset).
        environ.setdefault("HTTP_X_MOTO_ACCOUNT_ID", self.account_id)
        try:
            with self.emulation.lock:
                self.emulation.ebs.check(request, str(environ["HTTP_X_MOTO_ACCOUNT_ID"]))
        except ServiceError as err:  # what AWS refuses and moto would accept (ebs_keys)
            refused = wire.error(request.protocol, request.service, err, request.request_id)
            return self._answer(request, refused, "emulation", start_response)
        body = self._moto(environ, capture)
        hook = self.emulation.after_moto.get((request.service or "", request.operation or ""))
        if hook is not None and statuses and statuses[0] < 300:
            with self.emulation.lock:
                hook(request)
        self._record(request, statuses[0] if statuses else 0, "moto")
        return body  # type: ignore[no-any-return]

    def _control(
        self, action: Callable[[LocalAws, Any], Any], environ: WsgiEnviron
    ) -> HttpResponse:
        request = wire.read_request(environ)
        try:
            body = request.json() if request.body.strip() else {}
            payload = action(self, body)
        except ConfigError as exc:
            return wire.plain(400, {"error": str(exc), "problems": exc.lines()})
        except ServiceError as err:
            return wire.plain(400, {"error": err.message})
        return wire.plain(200, payload)

    def _download(self, path: str) -> HttpResponse:
        found = self.emulation.reports.get(path)
        if found is None:
            return wire.plain(404, {"error": f"no such report: {path}"})
        content_type, content = found
        return HttpResponse(200, (("Content-Type", content_type),), content)


def _listen(port: int) -> socket.socket:
    """A listening socket on 127.0.0.1 (werkzeug would sys.exit() on a taken port)."""
    try:
        return socket.create_server((HOST, port), backlog=128)
    except OSError as exc:
        raise ConfigError(f"local AWS: cannot listen on {HOST}:{port}: {exc.strerror}") from exc


def _health(local: LocalAws, body: Any) -> dict[str, Any]:
    return {
        "status": "ok",
        "ready": local.ready,
        "problems": local.problems,
        "endpoint": local.endpoint,
        "region": local.region,
        "accountId": local.account_id,
        "now": local.clock.now(),
        "scenario": local.emulation.scenario().source,
    }


def _reset(local: LocalAws, body: Any) -> dict[str, Any]:
    local.reset()
    return {"status": "reset"}


def _load(local: LocalAws, body: Any) -> dict[str, Any]:
    loaded = local.load_scenario(scenarios.parse(body, source="POST /_localaws/scenario"))
    return {"status": "loaded", "scenario": loaded.source}


def _advance(local: LocalAws, body: Any) -> dict[str, Any]:
    seconds = body.get("seconds") if isinstance(body, dict) else None
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0:
        raise ConfigError(f"$.seconds: expected a number >= 0, got {seconds!r}")
    return {"now": local.advance(float(seconds))}


def _calls(local: LocalAws, body: Any) -> dict[str, Any]:
    return {"calls": [asdict(call) for call in local.calls]}


_CONTROL: dict[tuple[str, str], Callable[[LocalAws, Any], Any]] = {
    ("GET", "/_localaws/health"): _health,
    ("POST", "/_localaws/reset"): _reset,
    ("POST", "/_localaws/scenario"): _load,
    ("POST", "/_localaws/clock/advance"): _advance,
    ("GET", "/_localaws/calls"): _calls,
    ("POST", "/moto-api/reset"): _reset,  # moto's own reset must reset the emulation too
}


def _invalid(service: str, problems: list[model.Violation]) -> ServiceError:
    message = model.describe(problems)
    if service == "inspector2":
        fields = [{"name": p.path, "message": p.message} for p in problems]
        return wire.validation_error(message, "FIELD_VALIDATION_FAILED", fields)
    return ServiceError("ValidationException", message)


@contextmanager
def local_aws(port: int = 0, scenario: ScenarioLike = None) -> Iterator[LocalAws]:
    """Start the local AWS on 127.0.0.1:``port`` (0: a free port), yield it, stop it."""
    server = LocalAws(port, scenario)
    server.start()
    try:
        yield server
    finally:
        server.stop()
