"""What an emulated operation receives besides its parameters, and the handler signature.

Handlers take ``(ctx, params)`` with ``params`` already validated against the operation's input
shape, return the output as JSON-ready data, and raise ``wire.ServiceError`` for AWS errors.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Ctx:
    region: str
    account_id: str
    now: float  # the emulation clock when the request arrived
    base_url: str  # http://127.0.0.1:PORT as the client addressed it (for report URLs)
    request_id: str


Params = dict[str, Any]
Result = dict[str, Any]
Handler = Callable[[Ctx, Params], Result]
