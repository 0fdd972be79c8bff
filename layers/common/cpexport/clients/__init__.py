"""The only place the pipeline calls boto3.

Clients are created once per process with botocore's standard retry mode (transient errors
are retried here a few times; the state machine's Retry takes over after that).
"""

from __future__ import annotations

from functools import cache
from typing import Any

import boto3
from botocore.config import Config

_CONFIG = Config(retries={"mode": "standard", "max_attempts": 3}, user_agent_extra="customer-profiles-export")


@cache
def client(service: str) -> Any:
    """A cached boto3 client; endpoints come from the standard AWS_ENDPOINT_URL_* variables."""
    return boto3.session.Session().client(service, config=_CONFIG)  # type: ignore[call-overload]


def reset_clients() -> None:
    """Forget cached clients (tests that change endpoints or credentials)."""
    client.cache_clear()
