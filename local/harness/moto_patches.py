"""The moto 5.2.5 internals the harness replaces, in one place, each undone by `MotoPatches.remove`.

- `moto.awslambda_simple.models.LambdaSimpleBackend.invoke`: runs the real handler in a Lambda
  sandbox (moto's Docker-less backend only echoes the payload). moto's Step Functions interpreter
  reads `x-amz-function-error` and takes the `errorType` of the body as the ASL error name, so a
  Python exception class name is what `Retry`/`Catch` match, as on AWS.
- `moto.core.authorization.ActionAuthenticatorMixin._authenticate_and_authorize_action`: every
  request of every service (moto's S3 and non-S3 paths both end here) goes through the harness's
  `RequestGate`: SigV4 with the caller's real secret, authorization against the *real* resource
  ARN(s) with `local.iam` (moto's own check uses resource `*` for all but S3 and only knows
  StringEquals), dependent KMS permissions, and service limits.
- `moto.s3.models.FakeBucket.get_permission`: moto's S3 evaluated bucket policies itself with the
  evaluator that ignores unknown condition operators, so `Deny ... Bool aws:SecureTransport false`
  denied every request; the gate evaluates bucket policies (with the caller), so this answers neutral.
- `boto_client_for` as imported by each module of moto's Step Functions interpreter: its clients
  used the fixed keys "ak"/"sk"; they now carry the executing state machine's role credentials
  (the `StateCredentials.role_arn` each call site passes, by default the execution's RoleArn), so a
  Lambda task whose invoke permission is missing fails with AccessDenied, as on AWS. One client per
  role session, Region and service, shared (moto built one per Task: most of a Check's cost).
- `StepFunctionsParserBackend.start_execution`: an unnamed execution gets a UUID (moto named it
  "None"); an input over 256 KB is rejected as AWS's validation does.
- `WaitFunction._wait_interval` and the retrier module's `time`: Wait states and Retry intervals
  sleep `seconds * time_scale` (the original waits whole seconds only); Waits on the account's clock
  (`wait_clock`). With a held clock, `CommonStateField._eval_body` also tells the clock which state
  each thread evaluates, so a woken poll holds the clock until it is answered, and
  `Program._eval_body` lets a program's hold go when the program ends.
- `moto.events.models.Rule.send_to_targets`: a state machine target is handed to a callback (the
  harness starts it with the target's role, retries, dead-letters); DISABLED and pattern-less rules
  no longer match put events; other targets still go to moto's code.
- `moto.s3.models.FakeBucket.create_from_cloudformation_json`: moto's CloudFormation ignored a
  bucket's `LifecycleConfiguration`; its rules are put on the bucket (`lifecycle`), so the offline
  lifecycle (`lifecycle.apply_lifecycle`) reads what the template declared.
- `moto.cloudformation.parsing.parse_condition`: `Fn::Equals` compares the values as CloudFormation
  does, as text; moto turned a `Number` parameter into an int, so `!Equals [!Ref Minutes, "0"]`
  was false for "0".
- `physical_resource_id` added to `EventBus` and `LayerVersion`, which lack it, so `Ref` returns
  what it returns on AWS.
- Distributed Map (see `distributed_map`): `AmazonStateLanguageParser.parse` takes each Map's
  `ItemBatcher` out before moto's grammar sees it and hangs it on the parsed Map;
  `ResourceEvalS3._handle_list_objects_v2` pages through every object (AWS's item shape, `[]` for an
  empty prefix, `States.ItemReaderFailed` when listing is refused);
  `DistributedIterationComponent._map_run` batches the items, lets children start only when the role
  may `states:StartExecution` the state machine, and enforces the tolerated failures.
- `S3Backend.list_objects_v2` (without a delimiter) and the name-changing methods of `_VersionedKeyStore`:
  a page costs what the page holds, not what the bucket holds (see `s3_listing`), so a listing of
  100,000 keys takes seconds as on S3, not 85 s, and listing more than a baseline is not magnified.
- `parse` as imported by the interpreter's `json_path` module (`extract_json`, which only reads):
  each path text is parsed once (jsonpath_ng built a new ply parser for every path it read).
- `parse_to_aware_datetime` as imported by `moto.core.serialize`: an ISO 8601 timestamp string is
  read with `datetime.fromisoformat` instead of dateutil's general parser (half of what a listing
  page of 1,000 keys cost the server).
- `StepFunctionsParserBackend._validate_definition`: a refused definition answers with the error code
  `InvalidDefinition` (moto's parser raised an exception its responses render without a code).
- `AthenaResponse.start_query_execution` / `get_query_execution`: a started query really runs (the
  offline Athena, `local.athena.service`) as its caller, with the workgroup's result location;
  GetQueryExecution reports QUEUED/RUNNING/SUCCEEDED/FAILED with `StateChangeReason` and `AthenaError`
  (moto only advanced a state and returned canned results). The engine's outcome is kept on moto's
  `Execution` (its `status`, made manual by emptying `_transitions`) and in `query_results`.
- `state_task_service_for` as imported by `state_task_factory`: `athena` answers with the
  `.sync` integration of `athena_sync` (moto refuses every athena pattern but `.waitForTaskToken`).
- `IamResponse.simulate_principal_policy` (moto has none): `iam:SimulatePrincipalPolicy` answered by
  `local.iam.simulation` from the policies and the evaluator that authorize every request
  (`cpexport verify` simulates each role of the stack with it).

`tests/harness/test_harness_moto_internals.py` asserts each still exists with the signature and the
source lines relied on (the replacements carry `__wrapped__`, so originals can be checked while patched).
"""

from __future__ import annotations

import copy
import functools
import importlib
import inspect
import json
import logging
import pkgutil
import sys
import threading
import time
import types
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NoReturn, cast
from urllib.parse import urlparse

from cpexport.clients.timestamps import ISO_UTC, fast_timestamp_session
from moto.athena import models as athena_models
from moto.athena import responses as athena_responses
from moto.awslambda import models as lambda_models
from moto.awslambda_simple import models as lambda_simple_models
from moto.cloudformation import parsing as cfn_parsing
from moto.core import authorization
from moto.core import serialize as moto_serialize
from moto.core.exceptions import JsonRESTError
from moto.core.responses import ActionResult
from moto.events import models as events_models
from moto.iam import exceptions as iam_exceptions
from moto.iam import responses as iam_responses
from moto.s3 import models as s3_models
from moto.s3.utils import _VersionedKeyStore
from moto.stepfunctions.parser import models as sfn_parser_models
from moto.stepfunctions.parser.api import HistoryEventType, MapRunFailedEventDetails
from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
    FailureEvent,
    FailureEventException,
)
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import StatesErrorNameType
from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
from moto.stepfunctions.parser.asl.component.program.program import Program
from moto.stepfunctions.parser.asl.component.state.exec.state_map.item_reader.eval.resource_eval_s3 import (
    ResourceEvalS3,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.distributed_iteration_component import (
    DistributedIterationComponent,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_map.state_map import StateMap
from moto.stepfunctions.parser.asl.component.state.exec.state_task import state_task_factory
from moto.stepfunctions.parser.asl.component.state.state import CommonStateField
from moto.stepfunctions.parser.asl.component.state.wait.wait_function import wait_function
from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails
from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser
from moto.stepfunctions.parser.asl.utils import boto_client
from moto.stepfunctions.parser.asl.utils import json_path as json_path_module
from moto.stepfunctions.parser.asl.utils.json_path import extract_json
from werkzeug.exceptions import HTTPException

from local.athena.service import OfflineAthena, QueryOutcome, result_set
from local.clock import Clock, RealClock
from local.harness import athena_sync, distributed_map, s3_listing
from local.harness.distributed_map import ChildExecutionGate, MapRunSettings
from local.harness.lambda_runtime import DeployedConfig, LambdaRuntime
from local.harness.lifecycle import lifecycle_rules_of
from local.harness.wait_clock import PollHolds, clocked_wait, program_hook, state_hook
from local.iam.errors import ServiceError
from local.iam.gate import RequestGate, SignedRequest
from local.iam.operations import ApiCall
from local.iam.principals import CredentialBroker, Credentials
from local.iam.simulation import NoSuchPrincipal, SimulationRefused, simulate_principal_policy

LOG = logging.getLogger("local.harness")

_MISSING = object()

# Loggers that are loud for failures the state machine handles (Catch), or for every request.
_NOISY_LOGGERS = ("moto.stepfunctions.parser", "werkzeug")
STATE_MACHINE_INPUT_LIMIT = 262144  # characters, the StartExecution `input` constraint of the API model


class _ScaledTime(types.SimpleNamespace):
    """Stands in for the `time` module inside moto's retrier: sleeps are scaled, the rest is real."""

    def __init__(self, scale: float) -> None:
        super().__init__()
        self._scale = scale

    def sleep(self, seconds: float) -> None:
        """Sleep `seconds * scale`."""
        time.sleep(max(0.0, seconds * self._scale))

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)

    @property
    def __wrapped__(self) -> types.ModuleType:
        """The real module (what `inspect.unwrap` and the moto-internals test look for)."""
        return time


StateMachineTarget = Callable[[Any, dict[str, Any], dict[str, Any]], object]
"""Called with (moto Rule, target dict, moto's event dict) for each state machine target hit."""


def _is_state_machine(target: dict[str, Any]) -> bool:
    return str(target.get("Arn", "")).split(":")[2:3] == ["states"]


def _send_to_targets(deliver: StateMachineTarget) -> Any:
    original = events_models.Rule.send_to_targets

    @functools.wraps(original)
    def send_to_targets(rule: Any, original_event: Any, transform_input: bool = True) -> None:
        # On AWS only an ENABLED rule with an event pattern matches put events.
        if rule.state != "ENABLED" or not rule.event_pattern.get_pattern():
            return None
        if not rule.event_pattern.matches_event(original_event):
            return None
        others = [target for target in rule.targets if not _is_state_machine(target)]
        for target in rule.targets:
            if _is_state_machine(target):
                try:
                    deliver(rule, target, original_event)
                except Exception:
                    # A failed target does not fail PutEvents on AWS either.
                    LOG.exception("Delivering to %s for rule %s failed", target.get("Arn"), rule.name)
        if others:
            # A copy with only the targets moto knows, so concurrent requests see the rule intact.
            rest = copy.copy(rule)
            rest.targets = others
            original(rest, original_event, transform_input)
        return None

    return send_to_targets


# ---------------------------------------------------------------------------------- the request gate
_JSON_CONTENT = ("application/x-amz-json", "application/json")


def _parameters(response: Any, service: str, operation: str) -> dict[str, Any]:
    """The request's parameters: query/form fields, and the JSON body of JSON protocols."""
    params: dict[str, Any] = {}
    for key, values in (getattr(response, "querystring", None) or {}).items():
        params[key] = values[0] if isinstance(values, list) and len(values) == 1 else values
    if service == "s3" or (service == "lambda" and operation.startswith("Invoke")):
        return params  # the body is an object's data or an invocation payload
    body = getattr(response, "raw_body", None)
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    if isinstance(body, str) and body.lstrip().startswith("{"):
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            params.update(parsed)
    return params


def _credential_scope(headers: Any) -> tuple[str | None, str, str]:
    authorization_header = headers.get("Authorization") or ""
    scope = authorization_header.partition("Credential=")[2].partition(",")[0]
    parts = scope.split("/")
    if len(parts) < 4:
        return None, "", ""
    return parts[0], parts[2], parts[3]


class _KeyView:
    """What moto's signature check asks of an access key: its credentials."""

    def __init__(self, credentials: Credentials) -> None:
        self._credentials = credentials

    def create_credentials(self) -> Any:
        from botocore.credentials import Credentials as BotocoreCredentials

        c = self._credentials
        return BotocoreCredentials(c.access_key_id, c.secret_access_key, c.session_token)


def _signature_checker(response: Any, iam_request_cls: type, region: str, service: str) -> Any:
    # moto's IAMRequest/S3IAMRequest, without the constructor that looks the key up in moto's IAM:
    # its signature computation and its service-specific errors are reused as they are.
    checker: Any = object.__new__(iam_request_cls)
    # As moto builds it in ActionAuthenticatorMixin._authenticate_and_authorize_action.
    path = response.raw_path
    query = urlparse(response.uri).query
    if query:
        path += "?" + query
    checker._method = response.method
    checker._path = path
    # moto signs `raw_body or data`: a form POST's body lives in `data` (werkzeug parsed it), but
    # moto's Lambda responses keep the headers there, which would be hashed as a form body.
    form = "x-www-form-urlencoded" in str(response.headers.get("Content-Type") or "")
    checker._data = response.data if service == "s3" or form else {}
    checker._body = response.raw_body
    checker._headers = response.headers
    checker._region = region
    checker._service = service
    checker.account_id = response.current_account
    return checker


def _gate_hook(gate: RequestGate) -> Any:
    original = authorization.ActionAuthenticatorMixin.__dict__["_authenticate_and_authorize_action"]

    @functools.wraps(original)
    def _authenticate_and_authorize_action(self: Any, iam_request_cls: type, resource: str = "*") -> None:
        access_key_id, region, signing_name = _credential_scope(self.headers)
        service = signing_name or str(getattr(self, "service_name", "") or "")
        operation = str(self._get_action() or "")
        call = ApiCall(
            service=service,
            operation=operation,
            params=_parameters(self, service, operation),
            path=str(getattr(self, "path", "") or ""),
            headers={str(k): str(v) for k, v in self.headers.items()},
            account_id=str(self.current_account),
            region=region or str(getattr(self, "region", "")),
            resource=resource if service == "s3" else None,
            body=self.raw_body if isinstance(self.raw_body, bytes) else str(self.raw_body or "").encode(),
        )
        checker = _signature_checker(self, iam_request_cls, call.region, service)

        def verify(credentials: Credentials) -> None:
            checker._access_key = _KeyView(credentials)
            checker.check_signature()

        def reject() -> NoReturn:
            checker._raise_invalid_access_key("InvalidId")
            raise AssertionError("unreachable")

        try:
            gate.admit(call, SignedRequest(access_key_id, verify, reject))
        except ServiceError as refused:
            raise _moto_error(refused, service, self.headers) from None
        except HTTPException as moto_error:
            # moto's signature and key errors are XML; JSON protocols need them as JSON to be parsed.
            json_request = any(kind in str(self.headers.get("Content-Type") or "") for kind in _JSON_CONTENT)
            if json_request and hasattr(moto_error, "to_json"):
                raise moto_error.to_json() from None
            raise

    return _authenticate_and_authorize_action


def _moto_error(refused: ServiceError, service: str, headers: Any) -> Exception:
    """The refusal rendered the way the service's protocol renders errors."""
    content_type = str(headers.get("Content-Type") or "")
    if service == "s3":
        from moto.s3.exceptions import S3ClientError

        # moto's S3 serializes its own ServiceException subclasses (S3 XML); the status comes from it.
        return S3ClientError(refused.code, refused.message)
    error: Any
    if any(kind in content_type for kind in _JSON_CONTENT) or service in ("lambda", "scheduler"):
        error = JsonRESTError(refused.code, refused.message)
    else:
        from moto.core.exceptions import _RESTError

        error = _RESTError(refused.code, refused.message)
    error.code = refused.status
    return cast(Exception, error)


# ---------------------------------------------------------------------------------- interpreter credentials
RoleCredentials = Callable[[str], Credentials | None]
"""The credentials of a state machine's role (None: unknown role; the call then fails unsigned-in)."""

_INTERPRETER_PACKAGE = "moto.stepfunctions.parser.asl.component"


def _interpreter_modules() -> list[types.ModuleType]:
    # Every call site imported `boto_client_for` by name: import them all, then find the holders.
    package = importlib.import_module(_INTERPRETER_PACKAGE)
    for info in pkgutil.walk_packages(package.__path__, _INTERPRETER_PACKAGE + "."):
        importlib.import_module(info.name)
    original = boto_client.boto_client_for
    return [
        module
        for name, module in list(sys.modules.items())
        if name.startswith("moto.stepfunctions.parser") and getattr(module, "boto_client_for", None) is original
    ]


_ROLE_CLIENT_CONNECTIONS = 64  # pooled connections of a shared interpreter client: every execution's Tasks at once


def _role_client_factory(credentials_of: RoleCredentials) -> Any:
    original = boto_client.boto_client_for
    clients: dict[tuple[str, ...], Any] = {}
    lock = threading.Lock()

    @functools.wraps(original)
    def boto_client_for(region: str, service: str, state_credentials: Any = None) -> Any:
        role_arn = getattr(state_credentials, "role_arn", None)
        credentials = credentials_of(str(role_arn)) if role_arn else None
        if credentials is None:
            return original(region=region, service=service, state_credentials=state_credentials)
        # moto built a new client for every Task (tens of ms of CPU each, most of a Check's cost
        # offline); a client per role session, region and service is built once and shared, as an
        # SDK client is (clients are thread-safe). New credentials of the role make a new one.
        key = (region, service, str(role_arn), *sorted(credentials.client_arguments().values()))
        with lock:
            found = clients.get(key)
        if found is not None:
            return found
        from botocore.config import Config

        client = original(region=region, service=service, state_credentials=state_credentials)
        # The same client moto builds, signed as the role instead of "ak"/"sk", and reading UTC
        # timestamps as the pipeline's clients do, without dateutil (a Distributed Map's ItemReader
        # parses a listing in the server's process: 100,000 LastModified strings for 100,000 files).
        built = _interpreter_client(
            service_name=service,
            region_name=region,
            endpoint_url=client.meta.endpoint_url,
            config=client.meta.config.merge(Config(max_pool_connections=_ROLE_CLIENT_CONNECTIONS)),
            **credentials.client_arguments(),
        )
        with lock:
            return clients.setdefault(key, built)

    return boto_client_for


_SESSION: list[Any] = []
_SESSION_LOCK = threading.Lock()


def _interpreter_client(**arguments: Any) -> Any:
    """A client of the session the interpreter's shared clients are built from: botocore's response
    parsers with the pipeline's `fast_timestamp_parser` (one session, built once, used under a lock
    since sessions are not thread-safe; the process's default session is left alone)."""
    with _SESSION_LOCK:
        if not _SESSION:
            _SESSION.append(fast_timestamp_session())
        return _SESSION[0].client(**arguments)


def _parsed_once(parse: Callable[[str], Any]) -> Any:
    """`parse` remembered by path text (for a caller that only reads through the parsed path: `find`)."""
    return functools.wraps(parse)(functools.lru_cache(maxsize=4096)(parse))


def _aware_datetime(original: Callable[[Any], datetime]) -> Any:
    """moto's response serializer turned every timestamp string into a datetime with dateutil's
    general parser (half of a ListObjectsV2 page's cost: 1,000 LastModified strings). An ISO 8601
    string in UTC ("Z"), the form moto stores, is read by `datetime.fromisoformat` (the same
    fields; botocore's parser moves other offsets to UTC); anything else still goes to the original."""

    @functools.wraps(original)
    def parse_to_aware_datetime(value: Any) -> datetime:
        if isinstance(value, str) and ISO_UTC.fullmatch(value):
            return datetime.fromisoformat(value)
        return original(value)

    return parse_to_aware_datetime


def _start_execution(original: Any) -> Any:
    @functools.wraps(original)
    def start_execution(
        backend: Any, state_machine_arn: str, name: Any = None, execution_input: Any = None, trace_header: Any = None
    ) -> Any:
        from moto.stepfunctions.exceptions import ValidationException

        if execution_input is not None and len(str(execution_input)) > STATE_MACHINE_INPUT_LIMIT:
            raise ValidationException(
                "1 validation error detected: Value at 'input' failed to satisfy constraint: "
                f"Member must have length less than or equal to {STATE_MACHINE_INPUT_LIMIT}"
            )
        # AWS names an unnamed execution with a UUID; moto used the string "None".
        return original(backend, state_machine_arn, name or str(uuid.uuid4()), execution_input, trace_header)

    return start_execution


@functools.wraps(s3_models.FakeBucket.get_permission)
def _bucket_permission_left_to_the_gate(bucket: Any, action: str, resource: str) -> Any:
    """Neutral: the request gate has already evaluated the bucket policy, with the caller."""
    from moto.iam.access_control import PermissionResult

    return PermissionResult.NEUTRAL


def _bucket_with_lifecycle(original: Any) -> Any:
    function = original.__func__

    def create_from_cloudformation_json(
        cls: Any, /, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str, **kwargs: Any
    ) -> Any:
        bucket = function(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs)
        rules = lifecycle_rules_of(cloudformation_json.get("Properties", {}))
        if rules:
            bucket.set_lifecycle(rules)
        return bucket

    create_from_cloudformation_json.__wrapped__ = function  # type: ignore[attr-defined]
    return classmethod(create_from_cloudformation_json)


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | str):
        return str(value)
    return json.dumps(value, sort_keys=True)


def _parse_condition(original: Any) -> Any:
    @functools.wraps(original)
    def parse_condition(condition: Any, resources_map: Any, condition_map: dict[str, Any]) -> Any:
        if isinstance(condition, dict) and next(iter(condition), None) == "Fn::Equals":
            values = [
                condition_map[value["Condition"]]
                if isinstance(value, dict) and "Condition" in value
                else cfn_parsing.clean_json(value, resources_map)
                for value in condition["Fn::Equals"]
            ]
            return _as_text(values[0]) == _as_text(values[1])
        return original(condition, resources_map, condition_map)

    return parse_condition


# ---------------------------------------------------------------------------------- Distributed Map
def _parse_with_map_runs(original: Callable[[str], Any]) -> Any:
    @functools.wraps(original)
    def parse(definition: str) -> Any:
        parsable, settings = distributed_map.split_map_runs(definition)
        program, tree = original(parsable)
        if settings and distributed_map.attach_map_runs(program, settings, StateMap) != len(settings):
            # A batcher that no Map carries would silently run unbatched: refuse instead.
            raise RuntimeError(f"the harness found not every Map state of {sorted(settings)} in moto's parse tree")
        return program, tree

    return staticmethod(parse)


def _map_run_failure(env: Any, error: StatesErrorNameType, cause: str) -> FailureEventException:
    """The failure of a Map run, shaped as moto's own item readers shape theirs."""
    name = StatesErrorName(typ=error)
    details = MapRunFailedEventDetails(error=name.error_name, cause=cause)
    return FailureEventException(
        FailureEvent(
            env=env,
            error_name=name,
            event_type=HistoryEventType.TaskFailed,
            # moto's EventDetails TypedDict marks every detail key required; one is what AWS sends.
            event_details=cast(EventDetails, {"mapRunFailedEventDetails": details}),
        )
    )


@functools.wraps(ResourceEvalS3._handle_list_objects_v2)
def _list_every_object(env: Any, resource_runtime_part: Any, state_credentials: Any) -> None:
    """The listObjectsV2 ItemReader as AWS runs it: every page, AWS's item shape, [] for an empty prefix."""
    from botocore.exceptions import BotoCoreError, ClientError

    s3_client = ResourceEvalS3._get_s3_client(
        resource_runtime_part=resource_runtime_part, state_credentials=state_credentials
    )
    parameters = env.stack.pop()
    try:
        items = distributed_map.list_all_objects(s3_client, parameters)
    except (ClientError, BotoCoreError) as error:
        raise _map_run_failure(
            env, StatesErrorNameType.StatesItemReaderFailed, f"ListObjectsV2 of the ItemReader failed: {error}"
        ) from None
    env.stack.append(items)


_BATCH_INPUT_TEMPLATES: dict[str, Any] = {}
_BATCH_INPUT_LOCK = threading.Lock()


def _batch_input_template(template: Any) -> Any:
    """A BatchInput payload template as moto's own `Parameters` component (so it evaluates alike)."""
    key = json.dumps(template, sort_keys=True)
    with _BATCH_INPUT_LOCK:
        if key not in _BATCH_INPUT_TEMPLATES:
            holder = {
                "StartAt": "BatchInput",
                "States": {"BatchInput": {"Type": "Pass", "Parameters": template, "End": True}},
            }
            program, _ = inspect.unwrap(AmazonStateLanguageParser.parse)(json.dumps(holder))
            _BATCH_INPUT_TEMPLATES[key] = program.states.states["BatchInput"].parameters
        return _BATCH_INPUT_TEMPLATES[key]


def _batched(env: Any, settings: MapRunSettings, items: list[Any]) -> list[dict[str, Any]]:
    batcher = settings.batcher
    assert batcher is not None
    state_input = env.states.get_input()
    max_items, max_bytes = batcher.max_items, batcher.max_input_bytes
    if batcher.max_items_path:
        max_items = distributed_map.positive_int(
            "MaxItemsPerBatchPath", extract_json(batcher.max_items_path, state_input)
        )
    if batcher.max_input_bytes_path:
        max_bytes = distributed_map.positive_int(
            "MaxInputBytesPerBatchPath", extract_json(batcher.max_input_bytes_path, state_input)
        )
    batch_input = None
    if batcher.batch_input is not None:
        env.stack.append(state_input)
        try:
            _batch_input_template(batcher.batch_input).eval(env)
            batch_input = env.stack.pop()
        finally:
            env.stack.pop()
    return distributed_map.batches(items, max_items, max_bytes, batch_input)


def _map_run_as_aws(gate: ChildExecutionGate | None) -> Any:
    original = DistributedIterationComponent._map_run

    @functools.wraps(original)
    def _map_run(component: Any, env: Any, eval_input: Any) -> None:
        settings: MapRunSettings | None = getattr(component, distributed_map.SETTINGS_ATTRIBUTE, None)
        items = env.stack.pop()
        if settings is not None and settings.batcher is not None:
            items = _batched(env, settings, items)
        count, percentage = eval_input.tolerated_failure_count, eval_input.tolerated_failure_percentage
        if items and gate is not None:
            context = env.states.context_object.context_object_data
            try:
                gate(str(env.aws_execution_details.role_arn), str(context["StateMachine"]["Id"]))
            except ServiceError as refused:
                # No child execution can start: every one of them fails.
                if distributed_map.tolerance_exceeded(settings, len(items), len(items), count, percentage):
                    raise _map_run_failure(
                        env,
                        StatesErrorNameType.StatesExceedToleratedFailureThreshold,
                        f"The specified tolerated failure threshold was exceeded: no child execution could "
                        f"start: {refused.message}",
                    ) from None
                env.stack.append([])
                return
        env.stack.append(items)
        original(component, env, eval_input)
        counter = eval_input.map_run_record.item_counter
        failed = counter.failed.get() + counter.timed_out.get()
        if distributed_map.tolerance_exceeded(settings, failed, len(items), count, percentage):
            env.stack.pop()
            raise _map_run_failure(
                env,
                StatesErrorNameType.StatesExceedToleratedFailureThreshold,
                f"The specified tolerated failure threshold was exceeded: {failed} of {len(items)} child "
                "executions failed",
            )

    return _map_run


def _validate_definition(original: Callable[[str], None]) -> Any:
    @functools.wraps(original)
    def validate(definition: str) -> None:
        from moto.stepfunctions.parser.api import InvalidDefinition

        try:
            original(definition)
        except InvalidDefinition as refused:
            raise JsonRESTError("InvalidDefinition", f"Invalid State Machine Definition: {refused.message}") from None

    return staticmethod(validate)


# ---------------------------------------------------------------------------------- IAM
_SIMULATION_PARAMETERS = (
    "PolicySourceArn",
    "ActionNames",
    "ResourceArns",
    "ContextEntries",
    "ResourcePolicy",
    "CallerArn",
)


def _policy_simulator(broker: CredentialBroker) -> Any:
    def simulate(response: Any) -> ActionResult:
        params = {name: response._get_param(name) for name in _SIMULATION_PARAMETERS}
        try:
            return ActionResult(simulate_principal_policy(broker, params))
        except NoSuchPrincipal as missing:
            raise iam_exceptions.NoSuchEntity(str(missing)) from None
        except SimulationRefused as refused:
            raise iam_exceptions.InvalidInput(str(refused)) from None

    return simulate


# ---------------------------------------------------------------------------------- Athena
def _athena_start(athena: OfflineAthena) -> Any:
    original = athena_responses.AthenaResponse.start_query_execution

    @functools.wraps(original)
    def start_query_execution(response: Any) -> Any:
        answer = original(response)
        if isinstance(answer, tuple):
            return answer  # refused by moto (an unknown workgroup)
        execution_id = json.loads(answer)["QueryExecutionId"]
        backend = response.athena_backend
        execution = backend.executions[execution_id]
        # The engine moves the state, not moto's state manager.
        execution._transitions = []
        execution.status = "QUEUED"
        workgroup = execution.workgroup
        configured = dict((workgroup.configuration if workgroup is not None else {}).get("ResultConfiguration") or {})
        enforced = workgroup is not None and workgroup.configuration.get("EnforceWorkGroupConfiguration", True)
        if (enforced or not execution.config) and configured.get("OutputLocation"):
            location = str(configured["OutputLocation"])
            execution.config = configured | {"OutputLocation": location.rstrip("/") + f"/{execution_id}.csv"}
        output = (execution.config or {}).get("OutputLocation")
        database = str((execution.context or {}).get("Database") or "default")
        access_key_id, _, _ = _credential_scope(response.headers)

        def ended(outcome: QueryOutcome) -> None:
            if outcome.result is not None:
                backend.query_results[execution_id] = athena_models.QueryResults(**_result_kwargs(outcome))
            execution.end_time = outcome.completed
            execution.status = outcome.state

        athena.start(execution_id, str(execution.query), database, output, access_key_id, ended)
        return answer

    return start_query_execution


def _result_kwargs(outcome: QueryOutcome) -> dict[str, Any]:
    assert outcome.result is not None
    shaped = result_set(outcome.result)
    return {"rows": shaped["Rows"], "column_info": shaped["ResultSetMetadata"]["ColumnInfo"]}


def _athena_describe(athena: OfflineAthena) -> Any:
    original = athena_responses.AthenaResponse.get_query_execution

    @functools.wraps(original)
    def get_query_execution(response: Any) -> str:
        described = json.loads(original(response))
        query = described["QueryExecution"]
        outcome = athena.outcome(str(query["QueryExecutionId"]))
        if outcome is not None:
            query["Status"] = outcome.status()
            query["StatementType"] = outcome.statement_type
            if outcome.result is not None:
                query["Statistics"]["DataScannedInBytes"] = outcome.result.bytes_scanned
            if not query.get("ResultConfiguration"):
                query.pop("ResultConfiguration", None)
        return json.dumps(described)

    return get_query_execution


@dataclass
class MotoPatches:
    """Installs the harness's replacements into moto's classes (process-wide) and removes them."""

    runtime: LambdaRuntime
    gate: RequestGate | None = None
    role_credentials: RoleCredentials | None = None
    time_scale: float = 1.0
    verbose: bool = False
    on_state_machine_target: StateMachineTarget | None = None
    child_execution_gate: ChildExecutionGate | None = None
    clock: Clock | None = None  # what Wait states sleep on (default: the wall clock); see `wait_clock`
    athena: OfflineAthena | None = None  # runs started queries (None: moto's canned Athena)
    _saved: list[tuple[Any, str, Any]] = field(default_factory=list)
    _log_levels: dict[str, int] = field(default_factory=dict)

    def apply(self) -> None:
        """Patch moto; call `remove` to restore it."""
        if self._saved:
            raise RuntimeError("moto patches are already applied")
        self._replace(lambda_simple_models.LambdaSimpleBackend, "invoke", self._invoke_method())
        if self.gate is not None:
            self._replace(
                authorization.ActionAuthenticatorMixin, "_authenticate_and_authorize_action", _gate_hook(self.gate)
            )
        if self.role_credentials is not None:
            factory = _role_client_factory(self.role_credentials)
            for module in _interpreter_modules():
                self._replace(module, "boto_client_for", factory)
        self._replace(cfn_parsing, "parse_condition", _parse_condition(cfn_parsing.parse_condition))
        # A JSONPath is parsed once: jsonpath_ng builds a new parser (ply's yacc) on every parse, and
        # the interpreter parses every path of every state it evaluates.
        # (result_path's `parse` is left alone: it calls `update_or_create` on the parsed path, and a
        # shared parsed path lost outputs there.)
        self._replace(json_path_module, "parse", _parsed_once(json_path_module.__dict__["parse"]))
        self._replace(
            moto_serialize,
            "parse_to_aware_datetime",
            _aware_datetime(moto_serialize.__dict__["parse_to_aware_datetime"]),
        )
        if self.gate is not None:
            self._replace(s3_models.FakeBucket, "get_permission", _bucket_permission_left_to_the_gate)
        self._replace(
            s3_models.FakeBucket,
            "create_from_cloudformation_json",
            _bucket_with_lifecycle(s3_models.FakeBucket.__dict__["create_from_cloudformation_json"]),
        )
        self._replace(
            sfn_parser_models.StepFunctionsParserBackend,
            "start_execution",
            _start_execution(sfn_parser_models.StepFunctionsParserBackend.start_execution),
        )
        if self.on_state_machine_target is not None:
            self._replace(events_models.Rule, "send_to_targets", _send_to_targets(self.on_state_machine_target))
        self._replace(AmazonStateLanguageParser, "parse", _parse_with_map_runs(AmazonStateLanguageParser.parse))
        self._replace(ResourceEvalS3, "_handle_list_objects_v2", staticmethod(_list_every_object))
        self._replace(
            s3_models.S3Backend,
            "list_objects_v2",
            s3_listing.paged_list_objects_v2(s3_models.S3Backend.list_objects_v2),
        )
        self._replace(_VersionedKeyStore, "__setitem__", s3_listing.noting_new_names(_VersionedKeyStore.__setitem__))
        self._replace(_VersionedKeyStore, "setlist", s3_listing.noting_new_names(_VersionedKeyStore.setlist))
        self._replace(_VersionedKeyStore, "pop", s3_listing.noting_removed_names(_VersionedKeyStore.pop))
        self._replace(
            sfn_parser_models.StepFunctionsParserBackend,
            "_validate_definition",
            _validate_definition(sfn_parser_models.StepFunctionsParserBackend._validate_definition),
        )
        self._replace(DistributedIterationComponent, "_map_run", _map_run_as_aws(self.child_execution_gate))
        if self.athena is not None:
            self._replace(athena_responses.AthenaResponse, "start_query_execution", _athena_start(self.athena))
            self._replace(athena_responses.AthenaResponse, "get_query_execution", _athena_describe(self.athena))
        self._replace(
            state_task_factory,
            "state_task_service_for",
            athena_sync.service_factory(state_task_factory.__dict__["state_task_service_for"], self.time_scale),
        )
        if self.gate is not None:
            broker = self.gate.enforcer.broker
            self._add_missing(iam_responses.IamResponse, "simulate_principal_policy", _policy_simulator(broker))
        self._add_missing(events_models.EventBus, "physical_resource_id", property(lambda bus: bus.name))
        self._add_missing(lambda_models.LayerVersion, "physical_resource_id", property(lambda layer: layer.arn))
        holds = PollHolds(self.clock if self.clock is not None else RealClock())
        self._replace(wait_function.WaitFunction, "_wait_interval", clocked_wait(self.time_scale, holds))
        if holds.holding:
            self._replace(CommonStateField, "_eval_body", state_hook(holds))
            self._replace(Program, "_eval_body", program_hook(holds))
        if self.time_scale != 1.0:
            self._replace(retrier_decl, "time", _ScaledTime(self.time_scale))
        if not self.verbose:
            for name in _NOISY_LOGGERS:
                logger = logging.getLogger(name)
                self._log_levels[name] = logger.level
                # The interpreter logs handled task failures at ERROR with full stacks.
                logger.setLevel(logging.CRITICAL if name.startswith("moto") else logging.WARNING)

    def remove(self) -> None:
        """Undo every patch, last first."""
        while self._saved:
            owner, name, original = self._saved.pop()
            if original is _MISSING:
                delattr(owner, name)
            else:
                setattr(owner, name, original)
        for name, level in self._log_levels.items():
            logging.getLogger(name).setLevel(level)
        self._log_levels.clear()

    def _replace(self, owner: Any, name: str, replacement: Any) -> None:
        self._saved.append((owner, name, owner.__dict__[name]))
        setattr(owner, name, replacement)

    def _add_missing(self, owner: type, name: str, addition: Any) -> None:
        # Only where moto has nothing: if a later moto defines it, moto's own wins.
        if not hasattr(owner, name):
            self._saved.append((owner, name, _MISSING))
            setattr(owner, name, addition)

    def _invoke_method(self) -> Any:
        runtime = self.runtime
        original = lambda_simple_models.LambdaSimpleBackend.invoke

        @functools.wraps(original)
        def invoke(
            backend: Any,
            function_name: str,
            qualifier: str | None,
            body: Any,
            headers: Any,
            response_headers: Any,
        ) -> str | bytes | None:
            function = backend.get_function(function_name, qualifier)
            if not runtime.knows(function.function_name):
                # Not from the deployed template: keep moto's echo behaviour.
                return original(backend, function_name, qualifier, body, headers, response_headers)
            config = DeployedConfig(
                function_name=function.function_name,
                function_arn=function.function_arn,
                handler=function.handler,
                timeout=int(function.timeout),
                memory_size=int(function.memory_size),
                environment=dict(function.environment_vars or {}),
                region=function.region,
                role_arn=str(function.role or ""),
            )
            result = runtime.invoke(config, body)
            if result.function_error:
                response_headers["x-amz-function-error"] = result.function_error
            return result.payload

        return invoke


__all__ = ["MotoPatches", "StateMachineTarget"]
