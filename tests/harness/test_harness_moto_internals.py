"""The moto 5.2.5 internals the harness patches or relies on: an upgrade that moves them fails here."""

from __future__ import annotations

import inspect
import json
import time
from typing import Any

import moto
import pytest
from moto.awslambda.models import LayerVersion
from moto.awslambda_simple.models import LambdaSimpleBackend
from moto.cloudformation import parsing
from moto.events.models import EventBus, EventPattern, EventsBackend, Rule
from moto.server import ThreadedMotoServer
from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
from moto.stepfunctions.parser.asl.component.state.exec.state_task import state_task_lambda
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import state_task_service_lambda
from moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function import WaitFunction
from moto.stepfunctions.parser.asl.utils import boto_client


def _parameters(function: object) -> list[str]:
    return list(inspect.signature(function).parameters)  # type: ignore[arg-type]


def test_moto_is_the_pinned_version() -> None:
    assert moto.__version__ == "5.2.5"


def _original(function: object) -> Any:
    # The harness's replacements carry __wrapped__: check moto's own code even while patched.
    return inspect.unwrap(function)  # type: ignore[arg-type]


def test_lambda_simple_backend_invoke_signature() -> None:
    invoke = _original(LambdaSimpleBackend.__dict__["invoke"])
    assert invoke.__module__ == "moto.awslambda_simple.models"
    assert _parameters(invoke) == ["self", "function_name", "qualifier", "body", "headers", "response_headers"]


def test_lambda_error_type_becomes_the_asl_error_name() -> None:
    # Both Lambda task styles read errorType from the payload of an x-amz-function-error reply.
    for module in (state_task_lambda, state_task_service_lambda):
        assert 'cause_object["errorType"]' in inspect.getsource(module)


def test_wait_function_wait_interval_signature() -> None:
    wait_interval = _original(WaitFunction.__dict__["_wait_interval"])
    assert wait_interval.__module__ == WaitFunction.__module__
    assert _parameters(wait_interval) == ["self", "env", "wait_seconds"]
    assert "program_state_event.wait" in inspect.getsource(wait_interval)


def test_retrier_sleeps_through_its_module_time() -> None:
    assert _original(retrier_decl.__dict__["time"]) is time
    assert "time.sleep(interval_seconds)" in inspect.getsource(retrier_decl.RetrierDecl._eval_body)


def test_interpreter_calls_back_on_moto_port() -> None:
    assert "moto_server_port()" in inspect.getsource(boto_client.boto_client_for)


def test_threaded_server_signature() -> None:
    assert _parameters(ThreadedMotoServer.__init__) == ["self", "ip_address", "port", "verbose"]
    assert hasattr(ThreadedMotoServer, "get_host_and_port")


def test_rule_send_to_targets_signature_and_attributes() -> None:
    send = _original(Rule.__dict__["send_to_targets"])
    assert send.__module__ == "moto.events.models"
    assert _parameters(send) == ["self", "original_event", "transform_input"]
    assert "rule.send_to_targets(event_msg)" in inspect.getsource(EventsBackend.put_events)
    rule = Rule("r", "123456789012", "us-east-1", None, '{"source": ["a"]}', None, None, "default", None)  # type: ignore[abstract]
    assert (rule.state, rule.targets, rule.arn) == ("ENABLED", [], "arn:aws:events:us-east-1:123456789012:rule/r")


EVENT = {"source": "shop", "detail": {"id": "o-1", "amount": 12.5}}


@pytest.mark.parametrize(
    ("pattern", "matches"),
    [
        ({"source": ["shop"]}, True),
        ({"source": [{"prefix": "sh"}]}, True),
        ({"source": [{"anything-but": ["shop"]}]}, False),
        ({"detail": {"id": [{"exists": True}]}}, True),
        ({"detail": {"nope": [{"exists": True}]}}, False),
        ({"detail": {"amount": [{"numeric": [">", 10, "<=", 12.5]}]}}, True),
        ({"detail": {"amount": [{"numeric": [">", 20]}]}}, False),
    ],
)
def test_moto_event_pattern_matching(pattern: dict[str, Any], matches: bool) -> None:
    # The harness relies on moto's matcher for exact, prefix, anything-but, exists and numeric.
    assert EventPattern.load(json.dumps(pattern)).matches_event(EVENT) is matches  # type: ignore[arg-type]


def test_cloudformation_ref_returns_physical_resource_id() -> None:
    # The harness adds physical_resource_id to EventBus and LayerVersion for moto's Ref to use.
    assert 'hasattr(resource, "physical_resource_id")' in inspect.getsource(parsing.clean_json)
    assert hasattr(EventBus, "name") or "self.name = name" in inspect.getsource(EventBus.__init__)
    assert "def arn" in inspect.getsource(LayerVersion)
