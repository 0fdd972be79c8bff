"""Offline harness: a SAM template deployed into moto, its state machines run with real Lambda sandboxes.

Entry points: `OfflineStack` (lifecycle, executions, triggers), `offline_stack` and
`offline_stack_fixture` for pytest. Imports are lazy: a Lambda sandbox worker
(`local.harness.sandbox`) is started as a module of this package and must not pay for moto.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from local.harness.pytest_plugin import offline_stack, offline_stack_fixture
    from local.harness.stack import OfflineStack, PutEventsResult, StackResource

__all__ = ["OfflineStack", "PutEventsResult", "StackResource", "offline_stack", "offline_stack_fixture"]

_HOMES = {
    "OfflineStack": "local.harness.stack",
    "PutEventsResult": "local.harness.stack",
    "StackResource": "local.harness.stack",
    "offline_stack": "local.harness.pytest_plugin",
    "offline_stack_fixture": "local.harness.pytest_plugin",
}


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(importlib.import_module(_HOMES[name]), name)
    raise AttributeError(f"module 'local.harness' has no attribute {name!r}")
