"""Every permission the template grants is needed: without any one statement, a user-visible outcome changes.

The statements come from the real template.yaml as the harness transforms it (samtranslator): every
Statement of every inline policy of every `AWS::IAM::Role` (the functions' roles, the two state
machines', the schedules' and the request rule's), and of every `AWS::IAM::Policy` attached to one of them (the
state machine's right to start its own Distributed Map children). A variant without one statement is applied to the deployed
stack by re-putting the role's inline policy in moto's IAM (cheap; `test_a_redeployed_variant_...`
shows once that a full deployment of a variant behaves the same), the scenario of `scenario.py` runs,
and it must differ from the full template's run somewhere. A statement whose variant changes nothing
is reported as unneeded: remove it from the template (or make the offline stack check what needs it).

Not enumerated: the AWS managed policies SAM attaches (AWSLambdaBasicExecutionRole: Lambda writes
the function logs outside the function's code, which is not modelled offline; AWSXrayWriteOnlyAccess:
tracing is off offline, there is no X-Ray daemon). They are not the template's statements either.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest

from local.harness.sam import load_template, package_template, transform_template
from local.harness.stack import DeployedStack, OfflineStack
from local.observe import PipelineObserver
from tests.strict.conftest import PARAMETERS, ROOT, policy_document
from tests.strict.scenario import Observation, first_difference, run_scenario

# Checked by the AppIntegrations emulator's authorizer (another helper's branch, pending): until it
# is integrated, nothing offline needs these, through no fault of the template.
PENDING_EMULATOR_AUTHORIZER: set[tuple[str, str]] = set()
# Granted ahead of the code that uses it (the Glue catalog's wiring, another helper's branch): until the
# Index function registers partitions, nothing offline needs it.
PENDING_CATALOG_WIRING: set[tuple[str, str]] = set()


@dataclass(frozen=True)
class StatementRef:
    """One statement of one inline policy of one role of the transformed template."""

    role: str
    policy: str
    index: int
    sid: str

    @property
    def label(self) -> str:
        """`Role-Sid`, or `Role-PolicyName#index` when the statement has no Sid."""
        return f"{self.role}-{self.sid}" if self.sid else f"{self.role}-{self.policy}#{self.index}"


def transformed_template() -> dict[str, Any]:
    """template.yaml as CloudFormation, transformed by the harness as it deploys it."""
    template = load_template(ROOT / "template.yaml")
    packaged, _ = package_template(template, ROOT, lambda hint, data: ("variants", hint))
    saved = os.environ.get("AWS_DEFAULT_REGION")
    os.environ["AWS_DEFAULT_REGION"] = "us-east-1"  # samtranslator reads the Region from the environment
    try:
        return transform_template(packaged, PARAMETERS)
    finally:
        if saved is None:
            del os.environ["AWS_DEFAULT_REGION"]
        else:
            os.environ["AWS_DEFAULT_REGION"] = saved


def statements(template: dict[str, Any]) -> list[StatementRef]:
    """Every statement of every inline policy of every role, and of every policy attached to a role."""
    found = []
    for logical_id, resource in template["Resources"].items():
        # A conditional role (the raw partition job's, only with RawExportRetentionDays > 0) is not
        # deployed with this package's parameters; tests/e2e_local/test_retention.py runs it.
        if resource.get("Condition"):
            continue
        if resource["Type"] == "AWS::IAM::Role":
            for policy in resource["Properties"].get("Policies") or []:
                for index, statement in enumerate(policy["PolicyDocument"]["Statement"]):
                    found.append(StatementRef(logical_id, policy["PolicyName"], index, str(statement.get("Sid", ""))))
        elif resource["Type"] == "AWS::IAM::Policy":
            # an inline policy of each role it names (what CloudFormation puts)
            for role in resource["Properties"].get("Roles") or []:
                for index, statement in enumerate(resource["Properties"]["PolicyDocument"]["Statement"]):
                    sid = str(statement.get("Sid", ""))
                    found.append(
                        StatementRef(role["Ref"], _plain_text(resource["Properties"]["PolicyName"]), index, sid)
                    )
    return found


def _plain_text(value: Any) -> str:
    """A name as written, or its `Fn::Sub` without variables (a per-domain policy's name once ForEach ran)."""
    if isinstance(value, dict) and set(value) == {"Fn::Sub"} and "${" not in str(value["Fn::Sub"]):
        return str(value["Fn::Sub"])
    if not isinstance(value, str):
        raise ValueError(f"a policy name the test cannot resolve: {value!r}")
    return value


STATEMENTS = statements(transformed_template())


def _param(ref: StatementRef) -> Any:
    marks = []
    if (ref.role, ref.sid) in PENDING_EMULATOR_AUTHORIZER:
        marks.append(pytest.mark.xfail(strict=True, reason="checked by the emulator's authorizer (pending)"))
    if (ref.role, ref.sid) in PENDING_CATALOG_WIRING:
        marks.append(pytest.mark.xfail(strict=True, reason="used once the Index function registers partitions"))
    return pytest.param(ref, id=ref.label, marks=marks)


@dataclass
class Variants:
    """The deployed stack, its observer, and the full template's run to compare with."""

    stack: OfflineStack
    observer: PipelineObserver
    baseline: list[tuple[str, Observation]]

    @contextmanager
    def without(self, ref: StatementRef) -> Iterator[None]:
        """Re-put the role's inline policy without the statement; restore it afterwards."""
        iam = self.stack.client("iam")
        role = self.stack.physical_id(ref.role)
        original = policy_document(iam.get_role_policy(RoleName=role, PolicyName=ref.policy)["PolicyDocument"])
        variant = copy.deepcopy(original)
        del variant["Statement"][ref.index]
        if variant["Statement"]:
            iam.put_role_policy(RoleName=role, PolicyName=ref.policy, PolicyDocument=json.dumps(variant))
        else:
            iam.delete_role_policy(RoleName=role, PolicyName=ref.policy)
        try:
            yield
        finally:
            iam.put_role_policy(RoleName=role, PolicyName=ref.policy, PolicyDocument=json.dumps(original))


@pytest.fixture(scope="module")
def variants(strict_stack: OfflineStack) -> Variants:
    """The full template's run: the baseline every variant is compared with."""
    observer = PipelineObserver(strict_stack, name="variants")
    baseline = list(run_scenario(strict_stack, strict_stack, observer))
    steps = dict(baseline)
    # The full template must pass the scenario itself
    assert steps["deployment checks"] == {"refused": None}
    assert (steps["first scheduled run"]["status"], steps["first scheduled run"]["watermark"]) == (
        "SUCCEEDED",
        "2026-11-01T23:30:00Z",
    )
    assert steps["request updating the association"]["status"] == "SUCCEEDED"
    assert steps["failing export"]["error"] == "ExportFailed"
    assert steps["rejected request"]["error"] == "ExportRequestRejected"
    assert steps["tick refused by Step Functions"] == {"dead_lettered": True, "error": "ThrottlingException"}
    assert steps["maintenance"]["status"] == "SUCCEEDED"
    assert steps["maintenance that never finishes"]["error"] == "MaintenanceFailed"
    # one alert per table (the object type's state and deleted tables)
    assert (
        steps["maintenance that never finishes"]["notifications"]
        == [("FAILED", "Customer Profiles export: table maintenance failed")] * 2
    )
    assert steps["maintenance tick refused by Step Functions"] == {
        "dead_lettered": True,
        "error": "ThrottlingException",
    }
    return Variants(strict_stack, observer, baseline)


def test_statements_are_found_for_every_role_the_template_creates() -> None:
    roles = {ref.role for ref in STATEMENTS}
    assert {
        "PlanFunctionRole",
        "StartExportFunctionRole",
        "CheckExportFunctionRole",
        "IndexExportFunctionRole",
        "CountRecordsFunctionRole",
        "RecordFailureFunctionRole",
        "NotifyFunctionRole",
        "ExportStateMachineRole",
        "ExportStateMachineScheduleRole",
        "ExportStateMachineExportRequestedRole",
        "MaintenanceStateMachineRole",
        "MaintenanceStateMachineScheduleRole",
    } <= roles
    assert len({ref.label for ref in STATEMENTS}) == len(STATEMENTS)
    # the state machine's right to start its Distributed Map children is a policy of its own
    assert ("ExportStateMachineRole", "StartChildExecutions") in {(ref.role, ref.sid) for ref in STATEMENTS}
    # and StartExport's grant on each configured domain is one too (template.yaml's StartExportDomainGrants)
    assert ("StartExportFunctionRole", f"profile-domain-{PARAMETERS['DomainNames']}") in {
        (ref.role, ref.policy) for ref in STATEMENTS
    }


@pytest.mark.parametrize("ref", [_param(ref) for ref in STATEMENTS])
def test_every_statement_is_needed(variants: Variants, ref: StatementRef) -> None:
    with variants.without(ref):
        difference = first_difference(variants.stack, variants.stack, variants.observer, variants.baseline)

    assert difference is not None, f"{ref.label} is not needed: the scenario's outcome is the same without it"


def _rename_schedules(template: dict[str, Any]) -> dict[str, Any]:
    # The template's schedule name is fixed (see test_side_by_side): a second stack needs its own.
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] == "AWS::Scheduler::Schedule":
            resource["Properties"]["Name"] = {"Fn::Sub": "${AWS::StackName}-" + logical_id}
    return template


def test_a_redeployed_variant_behaves_as_the_re_put_one(variants: Variants) -> None:
    # Given the variant without the Plan function's table access, applied by re-putting the policy
    ref = next(r for r in STATEMENTS if r.role == "PlanFunctionRole")
    with variants.without(ref):
        re_put = first_difference(variants.stack, variants.stack, variants.observer, variants.baseline)

    # When the same variant is deployed from scratch as a stack of its own
    def remove_statement(template: dict[str, Any]) -> dict[str, Any]:
        policies = template["Resources"][ref.role]["Properties"]["Policies"]
        policy = next(p for p in policies if p["PolicyName"] == ref.policy)
        del policy["PolicyDocument"]["Statement"][ref.index]
        return _rename_schedules(template)

    stack = variants.stack
    events = stack.client("events")
    rule = stack.physical_id("ExportStateMachineExportRequested")
    events.disable_rule(Name=rule)  # only the variant stack answers export requests meanwhile
    redeployed: DeployedStack = stack.add_stack("variant", dict(PARAMETERS), customize=remove_statement)
    try:
        observer = PipelineObserver(redeployed, name="variant-redeployed")  # type: ignore[arg-type]
        fresh = first_difference(stack, redeployed, observer, variants.baseline)
    finally:
        stack.remove_stack(redeployed)
        events.enable_rule(Name=rule)

    # Then both differ from the full template at the same step, in the same way
    assert re_put is not None and fresh is not None
    assert fresh == re_put


def test_the_full_template_passes_the_scenario_again(variants: Variants) -> None:
    # The baseline is reproducible: a second run of the full template observes the same outcome,
    # so a difference in a variant's run is the missing statement's doing.
    assert first_difference(variants.stack, variants.stack, variants.observer, variants.baseline) is None
