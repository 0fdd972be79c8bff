"""Both samconfig.toml environments deployed into one offline account and Region, and run."""

from __future__ import annotations

from datetime import UTC, datetime

from local.harness.samconfig import environments
from local.harness.stack import DeployedStack, OfflineStack
from tests.strict.conftest import ROOT


def test_default_and_prod_deploy_side_by_side_and_each_runs(strict_stack: OfflineStack) -> None:
    stack = strict_stack
    deployed: list[DeployedStack] = []
    try:
        for name in ("default", "prod"):
            environment = environments(ROOT / "samconfig.toml")[name]
            deployed.append(stack.add_stack(environment.stack_name, environment.parameters))
        # Each runs its own schedule: a tick that plans nothing ends at once
        for other in deployed:
            result = other.wait_execution(other.fire_schedule(scheduled_time=datetime(2024, 1, 1, 0, 10, tzinfo=UTC)))
            assert result["status"] == "SUCCEEDED"
        assert len({other.state_machine_arn() for other in deployed}) == 2
    finally:
        for other in deployed:
            stack.remove_stack(other)
