"""End-to-end: the real template.yaml in moto, the real ASL in moto's interpreter, the real handlers.

Each test module deploys its own stack (module scope): moto's state is process-global, so only
one offline stack may run at a time. Tests use a domain of their own so they do not share state.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from local.emulator.synthetic import generate
from local.harness.stack import OfflineStack
from local.observe import PipelineObserver
from tests.chat_contract import sns_problems

ROOT = Path(__file__).resolve().parents[2]
TIME_SCALE = 0.01  # a 60 s Wait takes 0.6 s
DAY0 = datetime(2026, 11, 1, tzinfo=UTC)

pytestmark = pytest.mark.e2e


def ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def deploy(
    parameters: dict[str, str], time_scale: float = TIME_SCALE, **options: Any
) -> Iterator[tuple[OfflineStack, PipelineObserver]]:
    logging.getLogger("moto").setLevel(logging.ERROR)
    base = {"InitialStartTime": "2026-11-01T00:00:00Z", "ObjectTypes": "_profile,_order"}
    with OfflineStack(
        ROOT / "template.yaml", base | parameters, time_scale=time_scale, stack_name="e2e", **options
    ) as stack:
        yield stack, PipelineObserver(stack)


class Seeder:
    """Seeds a domain's objects in the emulator and remembers every version it seeded."""

    def __init__(self, stack: OfflineStack, domain: str) -> None:
        self.control = stack.emulator_control
        self.domain = domain
        self.seeded: dict[str, list[dict[str, Any]]] = {}

    def add(self, object_type: str, count: int, start: datetime, end: datetime, seed: int = 0) -> list[dict[str, Any]]:
        objects = generate(object_type, count, ms(start), ms(end), seed)
        self.control.seed(self.domain, object_type, objects)
        self.seeded.setdefault(object_type, []).extend(objects)
        return objects


def run(stack: OfflineStack, payload: dict[str, Any], timeout: float = 120) -> dict[str, Any]:
    arn = stack.start_execution(payload)
    return stack.wait_execution(arn, timeout=timeout)


def tick(stack: OfflineStack, day: int, timeout: float = 120) -> dict[str, Any]:
    """Fire the stack's schedule as EventBridge Scheduler would, for midnight of day `day`."""
    arn = stack.fire_schedule(scheduled_time=DAY0 + timedelta(days=day))
    return stack.wait_execution(arn, timeout=timeout)


def publish_problems(observer: PipelineObserver) -> dict[str, list[str]]:
    """What SNS or chat would refuse in each message published since the last look (by subject)."""
    found = {}
    for sent in observer.published():
        problems = sns_problems(sent["Message"], sent["Subject"], sent["MessageAttributes"])
        if problems:
            found[sent["Subject"]] = problems
    return found


@pytest.fixture
def stack(deployed: tuple[OfflineStack, PipelineObserver]) -> Iterator[tuple[OfflineStack, PipelineObserver]]:
    """The module's deployed stack, with Lambdas cold and nothing left in the observer's queues.

    After the test, every message the pipeline published meanwhile (Notify's, the maintenance alerts) is
    one SNS accepts, with the text for email and a custom notification for chat.
    """
    offline, observer = deployed
    offline.reset()
    observer.notifications(), observer.result_events(), observer.published()
    yield offline, observer
    assert publish_problems(observer) == {}
