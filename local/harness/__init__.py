"""Offline harness: a SAM template deployed into moto, its state machines run with in-process Lambdas.

Entry points: `OfflineStack` (lifecycle, executions, triggers), `offline_stack` and
`offline_stack_fixture` for pytest. See local/harness/stack.py for what is patched in moto.
"""

from local.harness.pytest_plugin import offline_stack, offline_stack_fixture
from local.harness.stack import OfflineStack, PutEventsResult, StackResource

__all__ = ["OfflineStack", "PutEventsResult", "StackResource", "offline_stack", "offline_stack_fixture"]
