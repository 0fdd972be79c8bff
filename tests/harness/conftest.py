"""Fixtures of the harness tests: the fixture SAM app deployed once per session."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from local.harness import OfflineStack
from local.harness.pytest_plugin import offline_stack_fixture

FIXTURE_APP = Path(__file__).parent / "fixtures" / "app"
TEMPLATE = FIXTURE_APP / "template.yaml"
TIME_SCALE = 0.01

offline = offline_stack_fixture(TEMPLATE, parameters={"Stage": "test", "Greeting": "hi"}, time_scale=TIME_SCALE)


@pytest.fixture
def stack(offline: OfflineStack) -> OfflineStack:
    """The session's stack with the emulator reset and every Lambda cold again."""
    offline.reset()
    return offline


@pytest.fixture
def unique() -> str:
    """A key no other test uses (moto is not reset between tests)."""
    return uuid.uuid4().hex[:12]
