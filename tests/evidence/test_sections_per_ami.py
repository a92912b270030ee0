"""Each AMI of a run signs its own test instance's sections: kubelet broken on one instance of
two makes that AMI's record node FAIL and FAILED, the other's PASS; regate reproduces both."""

from __future__ import annotations

from pathlib import Path

from pipeline.evidence import statement
from pipeline.evidence.regate import regate
from pipeline.evidence.verify import verify_ami
from pipeline.localaws import LocalAws
from pipeline.validate import Runtime, run_validate
from tests._dates import shifted_now
from tests._sections import Knobs, readiness_answered
from tests.validate.conftest import FakeTime, make_ami, make_clients_for, settings


def test_each_ami_signs_its_own_instances_sections(
    local_aws_server: LocalAws, tmp_path: Path
) -> None:
    """Two AMIs in one run, kubelet broken on one test instance: that AMI's record says node
    FAIL (1 failed) and FAILED; the other's says PASS; regate reproduces both."""
    local_aws_server.reset()
    bundle = make_clients_for(local_aws_server)
    amis = [make_ami(bundle), make_ami(bundle, "al2023", "arm64")]
    fake = FakeTime(local_aws_server)
    rt = Runtime(now=shifted_now, echo=lambda _: None, sleep=fake.sleep, clock=fake.clock)
    with readiness_answered(Knobs(failing=frozenset({"node.kubelet.installed"}), only=0)):
        verdict = run_validate(settings(tmp_path, *amis), bundle, rt)
    assert verdict.verdict.value == "FAIL"
    by_ami = {}
    for ami in amis:
        result = verify_ami(bundle, ami)
        claims, _ = statement.read(result.statement or {})
        assert claims.sections is not None
        by_ami[ami] = (claims.verdict, claims.result, dict(claims.sections["node"]))
        again = regate(result)
        assert again.reproduced, (ami, again.problems, again.mismatches)
    assert sorted(v[:2] for v in by_ami.values()) == [("FAIL", "FAILED"), ("PASS", "PASSED")]
    failed = next(v[2] for v in by_ami.values() if v[0] == "FAIL")
    assert (failed["verdict"], failed["failed"]) == ("FAIL", 1)
