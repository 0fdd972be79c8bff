"""What CloudFormation checks of a stack's parameters before it creates anything; moto checks none of it.

A configuration the template refuses must fail the offline deployment as it fails `sam deploy`, not
deploy and then fail in every function. Checked, as the CloudFormation User Guide describes them:

- each parameter's constraints: `AllowedPattern` (matching the whole value; for a `CommaDelimitedList`,
  each item, trimmed as CloudFormation trims them), `AllowedValues` (each item of a list),
  `MinLength`/`MaxLength` (String), `MinValue`/`MaxValue` (Number; a Number that is not a number is
  refused). The message is the parameter's `ConstraintDescription` when it has one;
- the template's `Rules`: a rule whose `RuleCondition` holds (or that has none) must have every
  `Assertions` item true, else its `AssertDescription` is the error. Rule functions: `Fn::And`,
  `Fn::Or`, `Fn::Not`, `Fn::Equals`, `Fn::Contains`, `Fn::EachMemberEquals`, `Fn::EachMemberIn`,
  `Ref` (a parameter, or a pseudo parameter given by the caller). `Fn::RefAll`, `Fn::ValueOf` and
  `Fn::ValueOfAll` (AWS-specific parameter types) raise instead of being skipped.

Patterns are evaluated by Python's `re` (CloudFormation's are Java's): the two agree on the character
classes, anchors and quantifiers templates use.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any


class ParameterRefused(ValueError):
    """A parameter value or a rule the template declares refuses the stack (CloudFormation's ValidationError)."""


def list_items(value: str) -> list[str]:
    """A `CommaDelimitedList` value's items, each trimmed of surrounding spaces as CloudFormation does."""
    return [item.strip() for item in value.split(",")]


def check_parameters(
    template: Mapping[str, Any], values: Mapping[str, str], pseudo: Mapping[str, str] | None = None
) -> None:
    """Raise `ParameterRefused` for the first constraint or rule that refuses these parameter values."""
    declared: Mapping[str, Any] = template.get("Parameters") or {}
    for name, spec in declared.items():
        if name in values:
            _check_constraints(name, spec, values[name])
    typed = {name: list_items(value) if _is_list(declared.get(name) or {}) else value for name, value in values.items()}
    rules = _Rules(typed, dict(pseudo or {}))
    for rule_name, rule in (template.get("Rules") or {}).items():
        if "RuleCondition" in rule and not rules.evaluate(rule["RuleCondition"]):
            continue
        for assertion in rule.get("Assertions") or []:
            if not rules.evaluate(assertion["Assert"]):
                description = assertion.get("AssertDescription") or f"rule {rule_name} failed"
                raise ParameterRefused(f"Template rule {rule_name}: {description}")


def _is_list(spec: Mapping[str, Any]) -> bool:
    kind = str(spec.get("Type", "String"))
    return kind == "CommaDelimitedList" or kind.startswith("List<")


def _refuse(name: str, spec: Mapping[str, Any], problem: str) -> ParameterRefused:
    if spec.get("ConstraintDescription"):
        return ParameterRefused(
            f"Parameter '{name}' failed to satisfy constraint: {spec['ConstraintDescription']} ({problem})"
        )
    return ParameterRefused(f"Parameter '{name}' {problem}")


def _check_constraints(name: str, spec: Mapping[str, Any], value: str) -> None:
    kind = str(spec.get("Type", "String"))
    items = list_items(value) if _is_list(spec) else [value]
    pattern = spec.get("AllowedPattern")
    if pattern is not None and kind in ("String", "CommaDelimitedList"):
        for item in items:
            if re.fullmatch(str(pattern), item) is None:
                raise _refuse(name, spec, f"must match pattern {pattern}; got {item!r}")
    allowed = spec.get("AllowedValues")
    if allowed is not None:
        permitted = {str(option) for option in allowed}
        for item in items:
            if item not in permitted:
                raise _refuse(name, spec, f"must be one of AllowedValues; got {item!r}")
    if kind == "String":
        if "MinLength" in spec and len(value) < int(spec["MinLength"]):
            raise _refuse(name, spec, f"must contain at least {spec['MinLength']} characters")
        if "MaxLength" in spec and len(value) > int(spec["MaxLength"]):
            raise _refuse(name, spec, f"must contain at most {spec['MaxLength']} characters")
    if kind == "Number":
        try:
            number = float(value)
        except ValueError:
            raise _refuse(name, spec, f"must be a number; got {value!r}") from None
        if "MinValue" in spec and number < float(spec["MinValue"]):
            raise _refuse(name, spec, f"must be a number not less than {spec['MinValue']}")
        if "MaxValue" in spec and number > float(spec["MaxValue"]):
            raise _refuse(name, spec, f"must be a number not greater than {spec['MaxValue']}")


class _Rules:
    """Evaluates rule functions over the parameter values (lists for list parameters)."""

    def __init__(self, values: Mapping[str, Any], pseudo: Mapping[str, str]) -> None:
        self._values = values
        self._pseudo = pseudo

    def evaluate(self, expression: Any) -> bool:
        value = self.value(expression)
        if not isinstance(value, bool):
            raise ValueError(f"a rule condition or assertion must be a condition function, got {expression!r}")
        return value

    def value(self, expression: Any) -> Any:
        if isinstance(expression, list):
            return [self.value(item) for item in expression]
        if not isinstance(expression, dict):
            return expression if isinstance(expression, bool) else str(expression)
        if len(expression) != 1:
            raise ValueError(f"not a rule function: {expression!r}")
        ((function, argument),) = expression.items()
        if function == "Ref":
            return self._ref(str(argument))
        if function == "Fn::Not":
            return not self.evaluate(argument[0])
        if function == "Fn::And":
            return all(self.evaluate(item) for item in argument)
        if function == "Fn::Or":
            return any(self.evaluate(item) for item in argument)
        left, right = (self.value(item) for item in argument)
        if function == "Fn::Equals":
            return bool(left == right)
        if function == "Fn::Contains":
            return right in left
        if function == "Fn::EachMemberEquals":
            return all(item == right for item in left)
        if function == "Fn::EachMemberIn":
            return all(item in right for item in left)
        raise ValueError(f"rule function {function} is not evaluated offline")

    def _ref(self, name: str) -> Any:
        if name in self._values:
            return self._values[name]
        if name in self._pseudo:
            return self._pseudo[name]
        raise ValueError(f"a rule refers to {name}, which is neither a parameter nor a known pseudo parameter")
