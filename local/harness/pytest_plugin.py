"""Pytest fixtures over `OfflineStack`, for any conftest that wants the deployed template.

In a conftest.py:

    from local.harness.pytest_plugin import offline_stack_fixture

    offline = offline_stack_fixture("template.yaml", parameters={"Stage": "test"}, time_scale=0.01)

    @pytest.fixture
    def stack(offline):            # per test: emulator reset, Lambdas cold again
        offline.reset()
        return offline

The stack is deployed once per test package (deploying takes a few seconds); `reset()` does not touch
moto, so tests should use unique keys/names rather than rely on an empty table or bucket.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from local.harness.stack import OfflineStack


@contextmanager
def offline_stack(
    template_path: str | Path,
    parameters: dict[str, str] | None = None,
    time_scale: float = 0.01,
    **options: Any,
) -> Iterator[OfflineStack]:
    """Deploy `template_path` offline for the duration of the `with` block.

    `options` go to `OfflineStack` (emulator, emulator_options, stack_name, verbose ...).
    """
    with OfflineStack(template_path, parameters, time_scale=time_scale, **options) as stack:
        yield stack


def offline_stack_fixture(
    template_path: str | Path,
    parameters: dict[str, str] | None = None,
    time_scale: float = 0.01,
    scope: str = "package",
    **options: Any,
) -> Callable[..., Any]:
    """Return a pytest fixture (default scope: package) that yields a started `OfflineStack`.

    Assign it to a module-level name in a conftest: that name becomes the fixture's name.
    Only one stack runs per process, so a wider scope (session) would keep other test folders
    from starting theirs: package scope deploys once per test folder and lets them take turns.
    """
    import pytest  # here, so the CLI can import this package without pytest installed

    @pytest.fixture(scope=scope)  # type: ignore[call-overload, untyped-decorator]
    def _offline_stack() -> Iterator[OfflineStack]:
        with offline_stack(template_path, parameters, time_scale, **options) as stack:
            yield stack

    return _offline_stack  # type: ignore[no-any-return]
