"""``invoke validate``: tagged test instances, one Inspector CIS scan, the gate, and cleanup.

One run = one or more AMIs, one scan configuration, one run ID on everything it creates.
Cleanup runs on every path (normal end, error, SIGINT, SIGTERM) unless ``keep`` is set.
Every trust problem becomes an ERROR verdict with reports written, never a pass.

``run.py`` holds the run, its steps one module each, in the order they run: ``preflight``
(``resume``: earlier runs), ``launch``, ``wait`` (for SSM), ``scan``, ``collect``, the gate,
``record`` (reports, evidence, tags) and ``cleanup``; ``settings`` says what a run is asked to do.
"""

from __future__ import annotations

from pipeline.validate.cleanup import Interrupted
from pipeline.validate.record import retry_line
from pipeline.validate.run import run_validate
from pipeline.validate.settings import (
    DEFAULT_INSTANCE_TYPES,
    Runtime,
    ValidateSettings,
    run_settings,
    validate_settings,
)

__all__ = [
    "DEFAULT_INSTANCE_TYPES",
    "Interrupted",
    "Runtime",
    "ValidateSettings",
    "retry_line",
    "run_settings",
    "run_validate",
    "validate_settings",
]
