"""What CloudFormation would make of template.yaml for one stack: SAM translated, intrinsics resolved.

The template tests read permissions and names as AWS would see them once deployed, not as YAML:
`deploy("shop,outlet")` translates the template with AWS's own samtranslator (as the offline
harness does) and resolves Ref, Fn::GetAtt, Fn::Sub, Fn::Join, Fn::Split, Fn::Select, Fn::If and
the conditions for one stack name, Region and account. A resource without a name property gets the
name CloudFormation would generate (`{stack}-{logicalId}-{suffix}`); an intrinsic or a resource type
this module does not know raises, so a template change cannot slip past the tests unread.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from local.harness.sam import load_template, package_template, transform_template

ROOT = Path(__file__).resolve().parents[2]
REGION = "eu-west-1"
ACCOUNT = "123456789012"
PARTITION = "aws"

# The property that names each resource type, or None where the type has no name of its own.
NAME_PROPERTY: dict[str, str | None] = {
    # A NamedQuery's Name is a label (its id is generated), not a name that must be unique.
    "AWS::Athena::NamedQuery": None,
    "AWS::Athena::WorkGroup": "Name",
    "AWS::Chatbot::MicrosoftTeamsChannelConfiguration": "ConfigurationName",
    "AWS::Chatbot::SlackChannelConfiguration": "ConfigurationName",
    "AWS::CloudWatch::Alarm": "AlarmName",
    "AWS::CloudWatch::Dashboard": "DashboardName",
    "AWS::DynamoDB::Table": "TableName",
    "AWS::Events::Rule": "Name",
    # A dotted path: the name sits inside DatabaseInput.
    "AWS::Glue::Database": "DatabaseInput.Name",
    # An inline policy's name is unique within its role only: nothing account-wide to collide with.
    "AWS::IAM::Policy": None,
    "AWS::IAM::Role": "RoleName",
    "AWS::KMS::Alias": "AliasName",
    "AWS::KMS::Key": None,
    "AWS::Lambda::Function": "FunctionName",
    "AWS::Lambda::LayerVersion": "LayerName",
    "AWS::Logs::LogGroup": "LogGroupName",
    "AWS::S3::Bucket": "BucketName",
    "AWS::S3::BucketPolicy": None,
    "AWS::SNS::Subscription": None,
    "AWS::SNS::Topic": "TopicName",
    "AWS::SQS::Queue": "QueueName",
    "AWS::SQS::QueuePolicy": None,
    "AWS::Scheduler::Schedule": "Name",
    "AWS::Scheduler::ScheduleGroup": "Name",
    "AWS::StepFunctions::StateMachine": "StateMachineName",
}

_ARN = {
    "AWS::DynamoDB::Table": "arn:{p}:dynamodb:{r}:{a}:table/{name}",
    "AWS::Events::Rule": "arn:{p}:events:{r}:{a}:rule/{name}",
    "AWS::IAM::Role": "arn:{p}:iam::{a}:role/{name}",
    "AWS::KMS::Key": "arn:{p}:kms:{r}:{a}:key/{name}",
    "AWS::Lambda::Function": "arn:{p}:lambda:{r}:{a}:function:{name}",
    "AWS::Logs::LogGroup": "arn:{p}:logs:{r}:{a}:log-group:{name}:*",
    "AWS::S3::Bucket": "arn:{p}:s3:::{name}",
    "AWS::SNS::Topic": "arn:{p}:sns:{r}:{a}:{name}",
    "AWS::SQS::Queue": "arn:{p}:sqs:{r}:{a}:{name}",
    "AWS::StepFunctions::StateMachine": "arn:{p}:states:{r}:{a}:stateMachine:{name}",
    "AWS::Lambda::LayerVersion": "arn:{p}:lambda:{r}:{a}:layer:{name}:1",
}

# What Ref returns when it is not the resource's name.
_REF = {
    "AWS::SNS::Topic": "arn",
    "AWS::SQS::Queue": "https://sqs.{r}.amazonaws.com/{a}/{name}",
    "AWS::StepFunctions::StateMachine": "arn",
    "AWS::Lambda::LayerVersion": "arn",
}

_NO_VALUE = object()


@cache
def _packaged() -> dict[str, Any]:
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    packaged, _ = package_template(load_template(ROOT / "template.yaml"), ROOT, lambda hint, data: ("bucket", hint))
    return packaged


@cache
def _translated(domain_names: str, extra: tuple[tuple[str, str], ...]) -> dict[str, Any]:
    return transform_template(_packaged(), {"DomainNames": domain_names, **dict(extra)})


@dataclass
class Deployment:
    """template.yaml translated for one parameter set and resolved for one stack."""

    template: dict[str, Any]
    parameters: dict[str, Any]
    stack_name: str
    conditions: dict[str, bool] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in self.template.get("Conditions", {}):
            self.conditions[name] = self._condition(name)

    # -- the deployed resources ------------------------------------------------------------------
    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        """Resources that exist for these parameters (their Condition holds), as translated."""
        return {
            name: resource
            for name, resource in self.template["Resources"].items()
            if self.conditions.get(resource.get("Condition", ""), True)
        }

    def of_type(self, kind: str) -> dict[str, dict[str, Any]]:
        """Existing resources of one type."""
        return {name: r for name, r in self.resources.items() if r["Type"] == kind}

    def properties(self, logical_id: str) -> dict[str, Any]:
        """A resource's properties with every intrinsic resolved."""
        resolved: dict[str, Any] = self.resolve(self.resources[logical_id].get("Properties", {}))
        return resolved

    def physical_name(self, logical_id: str) -> str:
        """The resource's name: its name property resolved, or the one CloudFormation generates."""
        resource = self.template["Resources"][logical_id]
        kind = resource["Type"]
        if kind not in NAME_PROPERTY:
            raise KeyError(f"{logical_id}: resource type {kind} is unknown to tests/build/cloudformation.py")
        prop = NAME_PROPERTY[kind]
        given: Any = resource.get("Properties") or {}
        for part in prop.split(".") if prop else [None]:
            given = given.get(part) if part and isinstance(given, dict) else None
        if given is not None:
            return str(self.resolve(given))
        return f"{self.stack_name}-{logical_id}-GENERATED1A2B"[:64]

    def arn(self, logical_id: str) -> str:
        kind = self.template["Resources"][logical_id]["Type"]
        return _ARN[kind].format(p=PARTITION, r=REGION, a=ACCOUNT, name=self.physical_name(logical_id))

    def ref(self, name: str) -> Any:
        pseudo = {
            "AWS::StackName": self.stack_name,
            "AWS::Region": REGION,
            "AWS::AccountId": ACCOUNT,
            "AWS::Partition": PARTITION,
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::NoValue": _NO_VALUE,
        }
        if name in pseudo:
            return pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        kind = self.template["Resources"][name]["Type"]
        form = _REF.get(kind)
        if form == "arn":
            return self.arn(name)
        if form:
            return form.format(r=REGION, a=ACCOUNT, name=self.physical_name(name))
        return self.physical_name(name)

    def get_att(self, logical_id: str, attribute: str) -> Any:
        kind = self.template["Resources"][logical_id]["Type"]
        if attribute == "Arn":
            return self.arn(logical_id)
        if (kind, attribute) in {("AWS::SNS::Topic", "TopicName"), ("AWS::SQS::Queue", "QueueName")}:
            return self.physical_name(logical_id)
        raise KeyError(f"Fn::GetAtt {logical_id}.{attribute} is unknown to tests/build/cloudformation.py")

    # -- intrinsics --------------------------------------------------------------------------------
    def resolve(self, value: Any) -> Any:
        """Resolve every intrinsic function in a value; Ref AWS::NoValue drops the item or key."""
        if isinstance(value, list):
            items = [self.resolve(item) for item in value]
            return [item for item in items if item is not _NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, argument),) = value.items()
            if key == "Ref":
                return self.ref(argument)
            if key == "Fn::GetAtt":
                logical_id, attribute = argument if isinstance(argument, list) else argument.split(".", 1)
                return self.get_att(logical_id, attribute)
            if key == "Fn::Sub":
                return self._sub(argument)
            if key == "Fn::Join":
                delimiter, items = argument
                if not isinstance(delimiter, str):
                    raise ValueError("Fn::Join takes no function as its delimiter")
                return delimiter.join(str(item) for item in self.resolve(items))
            if key == "Fn::Split":
                delimiter, text = argument
                return str(self.resolve(text)).split(delimiter)
            if key == "Fn::Select":
                index, items = argument
                return self.resolve(items)[int(self.resolve(index))]
            if key == "Fn::If":
                condition, when_true, when_false = argument
                return self.resolve(when_true if self.conditions[condition] else when_false)
            if key.startswith("Fn::") or key == "Condition":
                raise KeyError(f"{key} is unknown to tests/build/cloudformation.py")
        resolved = {key: self.resolve(item) for key, item in value.items()}
        return {key: item for key, item in resolved.items() if item is not _NO_VALUE}

    def _sub(self, argument: Any) -> str:
        template, variables = (argument, {}) if isinstance(argument, str) else argument
        values = {name: self.resolve(item) for name, item in variables.items()}

        def substitute(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in values:
                return str(values[name])
            if "." in name:
                return str(self.get_att(*name.split(".", 1)))
            return str(self.ref(name))

        return re.sub(r"\$\{([^}]+)\}", substitute, template)

    def refused_by_rules(self) -> list[str]:
        """The AssertDescription of every Rules assertion these parameters break (CloudFormation refuses the stack)."""
        return [
            assertion.get("AssertDescription", name)
            for name, rule in self.template.get("Rules", {}).items()
            if "RuleCondition" not in rule or self._evaluate(rule["RuleCondition"])
            for assertion in rule["Assertions"]
            if not self._evaluate(assertion["Assert"])
        ]

    def _condition(self, name: str) -> bool:
        return self._evaluate(self.template["Conditions"][name])

    def _evaluate(self, expression: Any) -> bool:
        ((key, argument),) = expression.items()
        if key == "Condition":
            return self._condition(argument)
        if key == "Fn::Equals":
            left, right = (self.resolve(item) for item in argument)
            return str(left) == str(right)
        if key == "Fn::Not":
            return not self._evaluate(argument[0])
        if key == "Fn::And":
            return all(self._evaluate(item) for item in argument)
        if key == "Fn::Or":
            return any(self._evaluate(item) for item in argument)
        if key == "Fn::Contains":
            items, item = argument
            return str(self.resolve(item)) in [str(value) for value in self.resolve(items)]
        raise KeyError(f"condition function {key} is unknown to tests/build/cloudformation.py")


def deploy(domain_names: str, stack_name: str = "customer-profiles-export", **parameters: str) -> Deployment:
    """The template as deployed with these parameters (defaults for the rest) under that stack name."""
    template = _translated(domain_names, tuple(sorted(parameters.items())))
    values: dict[str, Any] = {}
    given = {"DomainNames": domain_names, **parameters}
    for name, declared in template.get("Parameters", {}).items():
        value = given.get(name, declared.get("Default"))
        if value is None:
            raise ValueError(f"parameter {name} has no value")
        values[name] = str(value).split(",") if declared["Type"] == "CommaDelimitedList" else str(value)
    return Deployment(template=template, parameters=values, stack_name=stack_name)


def _listed(statement: dict[str, Any]) -> dict[str, Any]:
    """A statement with its Action and Resource always lists."""
    normalized = dict(statement)
    for key in ("Action", "Resource"):
        if key in normalized and not isinstance(normalized[key], list):
            normalized[key] = [normalized[key]]
    return normalized


def role_statements(deployment: Deployment, role_logical_id: str) -> list[dict[str, Any]]:
    """Every statement of a role's inline policies, resolved; Action and Resource always lists."""
    statements = []
    for policy in deployment.properties(role_logical_id).get("Policies", []):
        statements += [_listed(statement) for statement in policy["PolicyDocument"]["Statement"]]
    return statements


def attached_policy_statements(deployment: Deployment, role_logical_id: str) -> list[dict[str, Any]]:
    """Every statement of the `AWS::IAM::Policy` resources attached to a role, resolved as `role_statements`."""
    role_name = deployment.physical_name(role_logical_id)
    statements = []
    for name in deployment.of_type("AWS::IAM::Policy"):
        properties = deployment.properties(name)
        if role_name not in properties.get("Roles", []):
            continue
        statements += [_listed(statement) for statement in properties["PolicyDocument"]["Statement"]]
    return statements


def function_roles(deployment: Deployment) -> dict[str, str]:
    """Function logical id -> the logical id of its execution role."""
    roles = {}
    for name, function in deployment.of_type("AWS::Lambda::Function").items():
        role = function["Properties"]["Role"]
        roles[name] = (
            role["Fn::GetAtt"][0] if isinstance(role["Fn::GetAtt"], list) else role["Fn::GetAtt"].split(".")[0]
        )
    return roles
