"""The embedded local AWS: moto in server mode plus the project's Inspector CIS and SSM emulation.

``with local_aws() as aws:`` starts it on a free loopback port; point clients at
``aws.endpoint`` (or ``aws.env()``). See README.md in this package for the rules it follows.
"""

from pipeline.localaws.scenario import Fault, Scenario
from pipeline.localaws.server import Call, LocalAws, local_aws

__all__ = ["Call", "Fault", "LocalAws", "Scenario", "local_aws"]
