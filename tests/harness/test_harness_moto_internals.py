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


def test_every_state_is_evaluated_through_the_common_eval_body_the_held_clock_hooks() -> None:
    from moto.stepfunctions.parser.asl.component.state.choice.state_choice import StateChoice
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.state_map import StateMap
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.state_task import StateTask
    from moto.stepfunctions.parser.asl.component.state.state import CommonStateField
    from moto.stepfunctions.parser.asl.component.state.wait.state_wait import StateWait

    eval_body = _original(CommonStateField.__dict__["_eval_body"])
    assert _parameters(eval_body) == ["self", "env"]
    assert "self._eval_state(env)" in inspect.getsource(eval_body)
    from moto.stepfunctions.parser.asl.component.state.state_pass.state_pass import StatePass

    for state in (StateChoice, StateMap, StatePass, StateTask, StateWait, *StateTask.__subclasses__()):
        assert "_eval_body" not in state.__dict__, f"{state.__name__} evaluates itself: the hook would miss it"


def test_a_program_runs_its_states_in_its_own_eval_body_the_held_clock_hooks() -> None:
    """`program_hook` lets the clock go when `Program._eval_body` returns: it must run every state of
    the program, on the thread `Program.eval` starts (so a hold taken by a state is on that thread)."""
    from moto.stepfunctions.parser.asl.component.program.program import Program

    eval_body = _original(Program.__dict__["_eval_body"])
    assert _parameters(eval_body) == ["self", "env"]
    assert "next_state.eval(env)" in inspect.getsource(eval_body)
    assert "threading.Thread(target=super().eval" in inspect.getsource(Program.eval)


def test_the_interpreter_reads_json_paths_with_the_parse_the_harness_remembers() -> None:
    from moto.stepfunctions.parser.asl.utils import json_path

    source = inspect.getsource(json_path.extract_json)
    assert "parse(path)" in source
    assert ".update" not in source  # it only reads: a parsed path can be shared
    assert _original(json_path.parse).__module__.startswith("jsonpath_ng")


def test_s3_listing_and_the_key_store_methods_the_harness_replaces() -> None:
    from moto.s3.models import S3Backend
    from moto.s3.utils import _VersionedKeyStore

    listing = _original(S3Backend.__dict__["list_objects_v2"])
    assert _parameters(listing) == [
        "self",
        "bucket",
        "prefix",
        "delimiter",
        "continuation_token",
        "start_after",
        "max_keys",
    ]
    assert "self._truncate_result(" in inspect.getsource(listing)
    assert "self._pagination_tokens.get(continuation_token)" in inspect.getsource(listing)
    # Names enter and leave the store only through these (the listing index is rebuilt when they do).
    for name in ("__setitem__", "setlist", "pop"):
        assert name in _VersionedKeyStore.__dict__
    assert "__delitem__" not in _VersionedKeyStore.__dict__ and "update" not in _VersionedKeyStore.__dict__


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


def test_every_request_is_authorized_through_one_mixin_method() -> None:
    # The gate replaces this method: both moto's S3 path and call_action end in it.
    from moto.core.authorization import ActionAuthenticatorMixin
    from moto.core.responses import BaseResponse
    from moto.s3.responses import S3Response

    method = _original(ActionAuthenticatorMixin.__dict__["_authenticate_and_authorize_action"])
    assert _parameters(method) == ["self", "iam_request_cls", "resource"]
    assert "self._authenticate_and_authorize_normal_action(resource)" in inspect.getsource(BaseResponse.call_action)
    assert "_authenticate_and_authorize_s3_action" in inspect.getsource(S3Response)
    normal = inspect.getsource(ActionAuthenticatorMixin._authenticate_and_authorize_normal_action)
    assert "self._authenticate_and_authorize_action(IAMRequest, resource)" in normal


def test_the_signature_check_reused_from_moto() -> None:
    # The gate builds IAMRequest/S3IAMRequest without their constructor and sets these attributes.
    from moto.iam.access_control import IAMRequestBase

    source = inspect.getsource(IAMRequestBase)
    for attribute in ("self._method", "self._path", "self._data", "self._body", "self._headers", "self._access_key"):
        assert attribute in source
    assert "def check_signature(self)" in source and "def _raise_invalid_access_key" in source
    assert "data=self._body or self._data" in inspect.getsource(IAMRequestBase._create_aws_request)


def test_interpreter_clients_are_built_by_boto_client_for_with_the_states_role() -> None:
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils, state_task

    assert _parameters(_original(boto_client.boto_client_for)) == ["region", "service", "state_credentials"]
    assert 'aws_access_key_id="ak"' in inspect.getsource(_original(boto_client.boto_client_for))
    # each call site passes the StateCredentials whose role_arn is the execution's role by default
    assert "state_credentials=state_credentials" in inspect.getsource(lambda_eval_utils)
    assert "role_arn=env.aws_execution_details.role_arn" in inspect.getsource(
        state_task.StateTask._eval_state_credentials
    )


def test_start_execution_of_the_executing_backend() -> None:
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend

    start = _original(StepFunctionsParserBackend.__dict__["start_execution"])
    assert _parameters(start) == ["self", "state_machine_arn", "name", "execution_input", "trace_header"]


def test_cloudformation_conditions_and_bucket_permissions_patched() -> None:
    from moto.s3.models import FakeBucket

    condition = _original(parsing.__dict__["parse_condition"])
    assert _parameters(condition) == ["condition", "resources_map", "condition_map"]
    assert "return condition_values[0] == condition_values[1]" in inspect.getsource(condition)
    assert _parameters(_original(FakeBucket.__dict__["get_permission"])) == ["self", "action", "resource"]


def test_moto_server_pieces_the_harness_binds_itself() -> None:
    from moto.moto_server.threaded_moto_server import ThreadedMotoServer as Threaded

    source = inspect.getsource(Threaded._server_entry)
    assert "DomainDispatcherApplication(create_backend_app)" in source
    assert "request_handler=MotoRequestHandler" in source


def test_services_the_harness_reads_in_process() -> None:
    from moto.iam.models import IAMBackend
    from moto.scheduler.models import EventBridgeSchedulerBackend
    from moto.sts.models import STSBackend

    assert "assumed_roles" in inspect.getsource(STSBackend.__init__)
    assert _parameters(STSBackend.assume_role) == [
        "self",
        "region_name",
        "role_session_name",
        "role_arn",
        "policy",
        "duration",
        "external_id",
    ]
    for method in ("list_role_policies", "get_role_policy", "list_attached_role_policies", "get_role_by_arn"):
        assert hasattr(IAMBackend, method)
    assert "raise ScheduleExists(name)" in inspect.getsource(EventBridgeSchedulerBackend.create_schedule)


# ---------------------------------------------------------------------------------- Distributed Map
def test_moto_grammar_still_rejects_an_item_batcher() -> None:
    # The reason the harness takes ItemBatchers out: the day moto parses them, drop that patch.
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser, ASLParserException

    processor = {
        "ProcessorConfig": {"Mode": "DISTRIBUTED"},
        "StartAt": "P",
        "States": {"P": {"Type": "Pass", "End": True}},
    }
    map_state = {"Type": "Map", "ItemProcessor": processor, "ItemBatcher": {"MaxItemsPerBatch": 2}, "End": True}
    with pytest.raises(ASLParserException):
        _original(AmazonStateLanguageParser.parse)(json.dumps({"StartAt": "M", "States": {"M": map_state}}))


def test_definitions_reach_moto_through_the_parsers_static_parse() -> None:
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser
    from moto.stepfunctions.parser.backend import execution_worker
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend

    assert isinstance(AmazonStateLanguageParser.__dict__["parse"], staticmethod)
    assert _parameters(_original(AmazonStateLanguageParser.parse)) == ["definition"]
    assert "AmazonStateLanguageParser.parse(definition)" in inspect.getsource(
        _original(StepFunctionsParserBackend._validate_definition)
    )
    assert "return AmazonStateLanguageParser.parse(" in inspect.getsource(execution_worker.ExecutionWorker)
    validate = StepFunctionsParserBackend.__dict__["_validate_definition"]
    assert isinstance(validate, staticmethod) and _parameters(_original(validate)) == ["definition"]
    assert "raise InvalidDefinition(" in inspect.getsource(_original(validate))


def test_parsed_map_states_expose_their_name_and_iteration_component() -> None:
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.state_map import StateMap
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser

    processor = {
        "ProcessorConfig": {"Mode": "DISTRIBUTED"},
        "StartAt": "P",
        "States": {"P": {"Type": "Pass", "End": True}},
    }
    definition = {"StartAt": "M", "States": {"M": {"Type": "Map", "ItemProcessor": processor, "End": True}}}
    program, _ = _original(AmazonStateLanguageParser.parse)(json.dumps(definition))
    state = program.states.states["M"]
    assert isinstance(state, StateMap) and state.name == "M"
    assert type(state.iteration_component).__name__ == "DistributedItemProcessor"
    # BatchInput is evaluated by a Pass state's Parameters component
    holder = {"StartAt": "B", "States": {"B": {"Type": "Pass", "Parameters": {"a.$": "$.a"}, "End": True}}}
    program, _ = _original(AmazonStateLanguageParser.parse)(json.dumps(holder))
    assert type(program.states.states["B"].parameters).__name__ == "Parameters"


def test_the_s3_list_reader_the_harness_replaces() -> None:
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.item_reader.eval.resource_eval_s3 import (
        ResourceEvalS3,
    )

    handler = ResourceEvalS3.__dict__["_handle_list_objects_v2"]
    assert isinstance(handler, staticmethod)
    original = _original(handler)
    assert _parameters(original) == ["env", "resource_runtime_part", "state_credentials"]
    source = inspect.getsource(original)
    # one call, no pagination, KeyError on an empty prefix: what the replacement fixes
    assert "response = s3_client.list_objects_v2(**parameters)" in source and 'response["Contents"]' in source
    assert _parameters(ResourceEvalS3._get_s3_client) == ["resource_runtime_part", "state_credentials"]
    assert "boto_client_for(" in inspect.getsource(ResourceEvalS3._get_s3_client)


def test_the_map_run_the_harness_wraps() -> None:
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration import distributed_iteration_component
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.itemprocessor import (
        distributed_item_processor_worker,
        map_run_record,
    )

    component = distributed_iteration_component.DistributedIterationComponent
    run = _original(component.__dict__["_map_run"])
    assert _parameters(run) == ["self", "env", "eval_input"]
    source = inspect.getsource(run)
    assert "input_items: list[json] = env.stack.pop()" in source and "env.stack.append(outputs)" in source
    # the items are on the stack when _map_run starts, read from the ItemReader or the input
    assert "self._map_run(env=env, eval_input=eval_input)" in inspect.getsource(component._eval_body)
    eval_input = inspect.getsource(distributed_iteration_component.DistributedIterationComponentEvalInput)
    for attribute in ("self.tolerated_failure_count", "self.tolerated_failure_percentage", "self.map_run_record"):
        assert attribute in eval_input
    # moto counts a failed child as failed (or timed out) and moves on: it never fails the run itself
    worker = inspect.getsource(distributed_item_processor_worker.DistributedItemProcessorWorker._eval_job)
    assert "self._map_run_record.item_counter.failed.count()" in worker
    assert "self._map_run_record.item_counter.timed_out.count()" in worker
    assert "ExceedToleratedFailureThreshold" not in inspect.getsource(distributed_iteration_component)
    counter = map_run_record.ItemCounter()
    assert counter.failed.get() == counter.timed_out.get() == 0


def test_the_pieces_a_map_run_failure_is_built_from() -> None:
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import StatesErrorNameType
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.item_reader.eval.resource_output_transformer import (
        transformer_json,
    )
    from moto.stepfunctions.parser.asl.eval import environment

    for name in ("StatesExceedToleratedFailureThreshold", "StatesItemReaderFailed"):
        assert hasattr(StatesErrorNameType, name)
    # moto's own reader failures have this shape (mapRunFailedEventDetails on a TaskFailed event)
    assert "mapRunFailedEventDetails=MapRunFailedEventDetails(" in inspect.getsource(transformer_json)
    source = inspect.getsource(environment.Environment)
    assert "self.aws_execution_details" in source and "self.states" in source


def test_the_response_serializer_reads_timestamps_with_the_function_the_harness_replaces() -> None:
    from moto.core.serialize import TimestampSerializer

    assert "parse_to_aware_datetime(value)" in inspect.getsource(TimestampSerializer._convert_timestamp_to_str)


def test_the_athena_responses_and_execution_state_the_offline_athena_replaces() -> None:
    """`_athena_start` / `_athena_describe` wrap these two responses and drive moto's Execution by hand."""
    from moto.athena import models as athena_models
    from moto.athena.responses import AthenaResponse

    for name in ("start_query_execution", "get_query_execution"):
        method = _original(AthenaResponse.__dict__[name])
        assert method.__module__ == "moto.athena.responses" and _parameters(method) == ["self"]
    start = inspect.getsource(_original(AthenaResponse.__dict__["start_query_execution"]))
    assert 'json.dumps({"QueryExecutionId": q_exec_id})' in start
    # An Execution's status is a ManagedState: with no transitions, only what the harness sets.
    execution = athena_models.Execution("SELECT 1", "", {}, None, None)
    execution._transitions = []
    execution.status = "FAILED"
    assert execution.status == "FAILED"
    assert "self.query_results[exec_id]" in inspect.getsource(athena_models.AthenaBackend.get_query_results)
    assert _parameters(athena_models.QueryResults.__init__) == ["self", "rows", "column_info"]


def test_the_task_factory_the_athena_sync_service_is_plugged_into() -> None:
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import state_task_factory
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import state_task_service_callback

    factory = _original(state_task_factory.__dict__["state_task_service_for"])
    assert _parameters(factory) == ["service_name"]
    assert "state_task_service_for(service_name=resource.service_name)" in inspect.getsource(state_task_factory)
    callback = state_task_service_callback.StateTaskServiceCallback
    # The athena service overrides these with the same parameters.
    assert _parameters(callback._build_sync_resolver) == [
        "self",
        "env",
        "resource_runtime_part",
        "normalised_parameters",
        "state_credentials",
    ]
    assert _parameters(callback._eval_sync) == [
        "self",
        "env",
        "sync_resolver",
        "timeout_seconds",
        "callback_endpoint",
        "heartbeat_endpoint",
    ]
    assert "callback_endpoint.interrupt_all()" in inspect.getsource(callback._eval_integration_pattern)


def test_moto_still_has_no_policy_simulator() -> None:
    # The harness adds IamResponse.simulate_principal_policy only where moto has none (`_add_missing`):
    # a moto that gains one would answer cpexport verify's simulations with its own evaluation.
    from moto.iam.responses import IamResponse

    added = IamResponse.__dict__.get("simulate_principal_policy")
    assert added is None or added.__module__ == "local.harness.moto_patches"
