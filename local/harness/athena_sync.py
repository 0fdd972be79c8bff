"""`arn:aws:states:::athena:startQueryExecution.sync` in moto's interpreter (moto has athena only for callbacks).

Start the query as the state machine's role, then poll GetQueryExecution until it ends, as Step
Functions' "Run a Job" pattern does. SUCCEEDED: the task's result is the GetQueryExecution response
(`{"QueryExecution": {...}}`, timestamps as epoch milliseconds, as Step Functions renders them).
FAILED or CANCELLED: the task fails with `States.TaskFailed` and the GetQueryExecution response as
JSON in the Cause, so `Status.StateChangeReason` (e.g. ICEBERG_COMMIT_ERROR) is readable there.
The error name follows moto's own `.sync` integrations (Glue, Batch, ECS, ported from LocalStack's
snapshots of AWS); the AWS documentation does not name it for Athena.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import Any, cast

from moto.stepfunctions.parser.api import HistoryEventType, TaskFailedEventDetails
from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
    FailureEvent,
    FailureEventException,
)
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import StatesErrorNameType
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.resource import ResourceCondition
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_callback import (
    StateTaskServiceCallback,
)
from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails
from moto.stepfunctions.parser.asl.utils import boto_client
from moto.stepfunctions.parser.asl.utils.encoding import to_json_str

# How often Step Functions polls a running query (not documented; moto polls its .sync jobs every 0.5 s).
POLL_INTERVAL_SECONDS = 1.0
_PARAMETERS = {
    "startqueryexecution": {
        "QueryString",
        "ClientRequestToken",
        "QueryExecutionContext",
        "ResultConfiguration",
        "WorkGroup",
        "ExecutionParameters",
        "ResultReuseConfiguration",
    }
}
_TERMINAL = {"SUCCEEDED", "FAILED", "CANCELLED"}


def _as_state_json(value: Any) -> Any:
    if isinstance(value, datetime):
        return int(value.timestamp() * 1000)
    if isinstance(value, dict):
        return {k: _as_state_json(v) for k, v in value.items() if k != "ResponseMetadata"}
    if isinstance(value, list):
        return [_as_state_json(v) for v in value]
    return value


def athena_task_service(time_scale: float) -> type[StateTaskServiceCallback]:
    """The athena StateTaskService class, polling every `POLL_INTERVAL_SECONDS * time_scale`."""

    class StateTaskServiceAthena(StateTaskServiceCallback):
        def __init__(self) -> None:
            # WaitForTaskToken too: moto's callback code interrupts a task-token endpoint after every
            # pattern and fails on None when the service does not declare it.
            patterns = {
                ResourceCondition(ResourceCondition.Sync),
                ResourceCondition(ResourceCondition.WaitForTaskToken),
            }
            super().__init__(supported_integration_patterns=patterns)

        def _get_supported_parameters(self) -> set[str] | None:
            return _PARAMETERS.get(self.resource.api_action.lower())

        def _client(self, resource_runtime_part: Any, state_credentials: Any) -> Any:
            # Looked up at call time: the harness gives the interpreter the role's clients.
            return boto_client.boto_client_for(
                region=resource_runtime_part.region, service="athena", state_credentials=state_credentials
            )

        def _eval_service_task(
            self, env: Any, resource_runtime_part: Any, normalised_parameters: dict[str, Any], state_credentials: Any
        ) -> None:
            client = self._client(resource_runtime_part, state_credentials)
            action = self._get_boto_service_action()
            response = getattr(client, action)(**normalised_parameters)
            env.stack.append(_as_state_json(response))

        def _build_sync_resolver(
            self, env: Any, resource_runtime_part: Any, normalised_parameters: dict[str, Any], state_credentials: Any
        ) -> Callable[[], Any] | None:
            started = env.stack.pop()
            execution_id = started["QueryExecutionId"]
            client = self._client(resource_runtime_part, state_credentials)

            def resolve() -> Any | None:
                response = _as_state_json(client.get_query_execution(QueryExecutionId=execution_id))
                state = response["QueryExecution"]["Status"]["State"]
                if state not in _TERMINAL:
                    return None
                if state == "SUCCEEDED":
                    return response
                name = StatesErrorName(typ=StatesErrorNameType.StatesTaskFailed)
                raise FailureEventException(
                    FailureEvent(
                        env=env,
                        error_name=name,
                        event_type=HistoryEventType.TaskFailed,
                        # moto's EventDetails TypedDict marks every key required; AWS sends this one.
                        event_details=cast(
                            EventDetails,
                            {
                                "taskFailedEventDetails": TaskFailedEventDetails(
                                    resource=self._get_sfn_resource(),
                                    resourceType=self._get_sfn_resource_type(),
                                    error=name.error_name,
                                    cause=to_json_str(response),
                                )
                            },
                        ),
                    )
                )

            return resolve

        def _eval_sync(
            self,
            env: Any,
            sync_resolver: Callable[[], Any] | None,
            timeout_seconds: int | None,
            callback_endpoint: Any,
            heartbeat_endpoint: Any,
        ) -> Any:
            # moto's loop sleeps a fixed 0.5 s; this one honours the harness's time scale.
            assert sync_resolver is not None
            while env.is_running():
                result = sync_resolver()
                if result:
                    return result
                time.sleep(POLL_INTERVAL_SECONDS * time_scale)
            return None

    return StateTaskServiceAthena


def service_factory(original: Callable[[str], Any], time_scale: float) -> Callable[[str], Any]:
    """`state_task_service_for` with athena answered by the .sync service above."""
    athena = athena_task_service(time_scale)

    def state_task_service_for(service_name: str) -> Any:
        if service_name == "athena":
            return athena()  # type: ignore[call-arg]
        return original(service_name)

    state_task_service_for.__wrapped__ = original  # type: ignore[attr-defined]
    return state_task_service_for
