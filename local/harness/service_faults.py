"""Errors the AWS services the pipeline calls can answer: throttling and internal errors of DynamoDB,
SNS, EventBridge (and any other moto service), injected at the request gate.

A rule answers matching calls with the service's own error (its code and HTTP status) before the
call takes effect, at a rate or for the next `count` calls. Only the pipeline's own callers (assumed
role sessions: functions, the state machine, the schedule) are faulted; the administrator the tests
and scripts use never is, so a test can still read what happened.
"""

from __future__ import annotations

import random
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from local.iam.errors import ServiceError
from local.iam.operations import ApiCall

# The throttling and internal errors each service really answers (code, HTTP status).
SERVICE_ERRORS: dict[str, dict[str, tuple[str, int]]] = {
    "dynamodb": {
        "throttle": ("ProvisionedThroughputExceededException", 400),
        "internal": ("InternalServerError", 500),
    },
    "sns": {"throttle": ("Throttling", 400), "internal": ("InternalError", 500)},
    "events": {"throttle": ("ThrottlingException", 400), "internal": ("InternalException", 500)},
    "s3": {"throttle": ("SlowDown", 503), "internal": ("InternalError", 500)},
    "states": {"throttle": ("ThrottlingException", 400), "internal": ("InternalServerError", 500)},
    "lambda": {"throttle": ("TooManyRequestsException", 429), "internal": ("ServiceException", 500)},
    "glue": {"throttle": ("ThrottlingException", 400), "internal": ("InternalServiceException", 500)},
}
_ACCESS_KEY = re.compile(r"Credential=([^/,\s]+)/")


@dataclass
class ServiceFaultRule:
    """Answer `operation` calls of `service` with its `kind` of error, at `rate`, at most `count` times."""

    service: str
    operation: str = "*"
    kind: str = "throttle"  # "throttle" or "internal"
    rate: float = 1.0
    count: int | None = None
    fired: int = 0

    def __post_init__(self) -> None:
        if self.service not in SERVICE_ERRORS:
            raise ValueError(f"no error shapes for service {self.service!r}: {sorted(SERVICE_ERRORS)}")
        if self.kind not in SERVICE_ERRORS[self.service]:
            raise ValueError(f"kind must be one of {sorted(SERVICE_ERRORS[self.service])}")
        if not 0 <= self.rate <= 1:
            raise ValueError("rate must be between 0 and 1")


@dataclass
class ServiceFaults:
    """The gate's fault check (a `LimitCheck`): raises the configured errors for the pipeline's callers."""

    is_administrator: Callable[[str], bool]
    seed: int = 0
    rules: list[ServiceFaultRule] = field(default_factory=list)
    _rng: random.Random = field(init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def configure(self, rules: list[ServiceFaultRule], seed: int | None = None) -> None:
        """Replace the rules (an empty list turns faults off); `seed` restarts the random draws."""
        with self._lock:
            self.rules = list(rules)
            if seed is not None:
                self._rng = random.Random(seed)

    def fired(self) -> list[ServiceFaultRule]:
        """The rules with how often each fired."""
        with self._lock:
            return [ServiceFaultRule(**{**vars(rule)}) for rule in self.rules]

    def __call__(self, call: ApiCall) -> None:
        if not self.rules:
            return
        found = _ACCESS_KEY.search(call.headers.get("Authorization", call.headers.get("authorization", "")))
        if found is None or self.is_administrator(found.group(1)):
            return
        with self._lock:
            for rule in self.rules:
                if rule.service != call.service or rule.operation not in ("*", call.operation):
                    continue
                if rule.count is not None and rule.fired >= rule.count:
                    continue
                if rule.rate < 1 and self._rng.random() >= rule.rate:
                    continue
                rule.fired += 1
                code, status = SERVICE_ERRORS[rule.service][rule.kind]
                raise ServiceError(code, f"{code} (offline fault) for {call.service}:{call.operation}", status)
