"""Run-time knobs of the emulator (the unknowns and faults of the real service made configurable).

Each knob is declared once, here, as a field of ``EmulatorConfig``: its name, type and default, its
meaning (the field's description) and how ``random_faults`` draws it for a randomized day (a ``Draw``
in the field's annotation; knobs without one are never drawn). The README's knob table is generated
from the same declarations (``knob_table``; ``python -m local.emulator --knob-table``).
"""

from __future__ import annotations

import json
import random
import time
import types
import typing
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.fields import FieldInfo

OBJECT_TYPES = ("_profile", "_asset", "_order", "_case")


def wall_clock_ms() -> int:
    """Return the real wall clock in epoch milliseconds."""
    return int(time.time() * 1000)


@dataclass(frozen=True)
class DrawContext:
    """What a draw may depend on: the object types the simulated day exports."""

    object_types: tuple[str, ...] = OBJECT_TYPES


@dataclass(frozen=True)
class Draw:
    """How ``random_faults`` draws one knob for a simulated day; ``describe`` goes into the README table."""

    describe: str
    pick: Callable[[random.Random, DrawContext], Any]

    @classmethod
    def choice(cls, *values: Any) -> Draw:
        """Uniformly one of ``values`` (repeat a value to make it likelier)."""
        distinct = list(dict.fromkeys(values))
        if len(distinct) == len(values):
            shown = ", ".join(json.dumps(v) for v in values)
        else:
            shown = ", ".join(f"{json.dumps(v)} ({values.count(v)}/{len(values)})" for v in distinct)
        return cls(f"one of {shown}", lambda rng, _ctx: rng.choice(values))

    @classmethod
    def weighted(cls, *pairs: tuple[Any, float]) -> Draw:
        """One of the values, each with its weight (``(value, weight)`` pairs; weights need not sum to 1)."""
        values = [value for value, _ in pairs]
        weights = [weight for _, weight in pairs]
        total = sum(weights)
        shown = ", ".join(f"{json.dumps(v)} ({w / total:.0%})" for v, w in pairs)
        return cls(f"one of {shown}", lambda rng, _ctx: rng.choices(values, weights)[0])

    @classmethod
    def uniform(cls, low: float, high: float) -> Draw:
        """A whole number of seconds between ``low`` and ``high``."""
        return cls(f"{low:g}-{high:g}, uniform", lambda rng, _ctx: float(round(rng.uniform(low, high))))

    @classmethod
    def one_object_type(cls, probability: float) -> Draw:
        """With ``probability``, a list of one of the day's object types; otherwise an empty list."""

        def pick(rng: random.Random, ctx: DrawContext) -> list[str]:
            return [rng.choice(ctx.object_types)] if rng.random() < probability else []

        return cls(f"one object type with probability {probability:g}, else none", pick)

    @classmethod
    def slow_object_type(cls, probability: float, low: float, high: float) -> Draw:
        """With ``probability``, one object type whose jobs last ``low``-``high`` seconds; otherwise none."""

        def pick(rng: random.Random, ctx: DrawContext) -> dict[str, float]:
            if rng.random() >= probability:
                return {}
            return {rng.choice(ctx.object_types): float(round(rng.uniform(low, high)))}

        return cls(f"one object type at {low:g}-{high:g} with probability {probability:g}, else none", pick)

    @classmethod
    def seed(cls) -> Draw:
        """A fresh seed, so each day's rate-based faults differ."""
        return cls("a fresh seed", lambda rng, _ctx: rng.randrange(2**31))


def _known_operation_names(names: list[str]) -> list[str]:
    # A typo would silently match nothing: check names against botocore's model.
    from local.emulator.model import service_model

    unknown = sorted(set(names) - set(service_model().operation_names) - {"*"})
    if unknown:
        raise ValueError(f"unknown AppIntegrations operations: {unknown}")
    return names


class FaultRule(BaseModel):
    """One fault-injection rule: which calls fail, how, when and how often (an entry of ``fault_rules``).

    A rule is armed when it is set (at construction, by ``POST /_emulator/config`` or by a reset); its
    window and its ``count`` run from then.
    """

    model_config = ConfigDict(extra="forbid")

    operation: str = Field(default="*", description="AppIntegrations operation name, or * for every operation.")
    fault: Literal["ThrottlingException", "InternalServiceError", "connection_dropped"] = Field(
        default="ThrottlingException",
        description="The error answered, or connection_dropped: the connection closes with no response.",
    )
    phase: Literal["before", "after"] = Field(
        default="before",
        description="before: the call is refused and changes nothing; after: the call takes effect (a Create or "
        "Update starts its job) and the caller still gets the fault.",
    )
    rate: float = Field(default=1.0, ge=0, le=1, description="Probability per matching call.")
    count: int | None = Field(
        default=None, ge=1, description="At most this many faults (with rate 1: a burst of the next N calls)."
    )
    start_seconds: float = Field(
        default=0.0, ge=0, description="The rule applies from this long after it was armed (times time_scale)."
    )
    duration_seconds: float | None = Field(
        default=None, ge=0, description="...and for this long (times time_scale); null: with no end."
    )

    @field_validator("operation")
    @classmethod
    def _known_operation(cls, value: str) -> str:
        _known_operation_names([value])
        return value


# Operations whose faults matter most to a pipeline: the ones that start jobs and the one it polls.
_JOB_OPERATIONS = ("CreateDataIntegrationAssociation", "UpdateDataIntegrationAssociation")
_BURST_OPERATIONS = (*_JOB_OPERATIONS, "ListDataIntegrationAssociations", "GetDataIntegration")


def _draw_fault_rules(rng: random.Random, _ctx: DrawContext) -> list[dict[str, Any]]:
    rules: list[FaultRule] = []
    if rng.random() < 0.3:
        burst = FaultRule(
            operation=rng.choice(_BURST_OPERATIONS),
            fault=rng.choice(("ThrottlingException", "InternalServiceError")),
            count=rng.randint(1, 4),
            start_seconds=float(round(rng.uniform(0, 3600))),
        )
        rules.append(burst)
    if rng.random() < 0.2:
        after_effect = FaultRule(
            operation=rng.choice(_JOB_OPERATIONS),
            fault=rng.choice(("InternalServiceError", "ThrottlingException", "connection_dropped")),
            phase="after",
            count=1,
        )
        rules.append(after_effect)
    if rng.random() < 0.2:
        window = FaultRule(
            fault="ThrottlingException",
            rate=rng.choice((0.3, 0.7)),
            start_seconds=float(round(rng.uniform(0, 3600))),
            duration_seconds=float(round(rng.uniform(60, 900))),
        )
        rules.append(window)
    return [rule.model_dump() for rule in rules]


FAULT_RULES_DRAW = Draw(
    "with probability 0.3 a burst of 1-4 Throttling/InternalServiceError on a job or polling operation; 0.2 one "
    "after-effect fault on Create/Update association; 0.2 a 1-15 minute window of throttling at rate 0.3 or 0.7",
    _draw_fault_rules,
)


class EmulatorConfig(BaseModel):
    """Knobs of the emulator; every field can be changed at run time via ``POST /_emulator/config``.

    ``now_ms`` is accepted as an input alias: it sets ``clock_offset_ms`` so that the
    emulator's clock reads ``now_ms`` at the moment the config is applied.
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    job_duration_seconds: Annotated[float, Draw.uniform(60, 3600)] = Field(
        default=1.0, ge=0, description="How long one export job runs until COMPLETED (times time_scale)."
    )
    job_duration_by_object_type: Annotated[
        dict[str, Annotated[float, Field(ge=0)]], Draw.slow_object_type(0.2, 3600, 7200)
    ] = Field(default_factory=dict, description="Per-object-type override of job_duration_seconds.")
    update_while_in_progress: Annotated[Literal["reject", "accept"], Draw.choice("reject", "accept")] = Field(
        default="reject",
        description="Update while the last job is IN_PROGRESS: `reject` answers InvalidRequestException; "
        "`accept` starts another job (List shows it, the old one keeps running and counts toward the quota).",
    )
    stale_status_seconds: Annotated[float, Draw.weighted((0.0, 2), (10.0, 1), (60.0, 1))] = Field(
        default=0.0,
        ge=0,
        description="After an Update, List shows the previous job's status and ExecutionConfiguration for this "
        "long (times time_scale).",
    )
    throttle_rate: Annotated[float, Draw.weighted((0.0, 3), (0.02, 1), (0.1, 1))] = Field(
        default=0.0, ge=0, le=1, description="Probability of ThrottlingException per API call (any operation)."
    )
    internal_error_rate: Annotated[float, Draw.weighted((0.0, 3), (0.01, 1), (0.05, 1))] = Field(
        default=0.0, ge=0, le=1, description="Probability of InternalServiceError per API call (any operation)."
    )
    fault_rules: Annotated[list[FaultRule], FAULT_RULES_DRAW] = Field(
        default_factory=list,
        description="Faults per operation, in bursts, in time windows, or after the call took effect: each rule "
        "{operation, fault, phase, rate, count, start_seconds, duration_seconds} (see FaultRule). The first rule "
        "that fires wins; GET /_emulator/faults shows how often each fired.",
    )
    fail_object_types: Annotated[list[str], Draw.one_object_type(0.15)] = Field(
        default_factory=list,
        description="Jobs of these object types FAIL half-way (files due before then are written).",
    )
    authentication_errors: Literal["modeled", "aws"] = Field(
        default="modeled",
        description="Error code of a request that fails authentication (bad signature, unknown key or token, stale "
        "date): `modeled` sends AccessDeniedException, the only one the AppIntegrations model declares; `aws` "
        "sends what AWS front ends send (UnrecognizedClientException, InvalidSignatureException, "
        "IncompleteSignatureException, MissingAuthenticationTokenException). Status 403 and AWS's message either "
        "way.",
    )
    never_ending_object_types: list[str] = Field(
        default_factory=list,
        description="Jobs of these object types write their files and then stay IN_PROGRESS (counting toward the "
        "quota) until a reset or POST /_emulator/jobs/finish.",
    )
    never_ending_rate: Annotated[float, Draw.weighted((0.0, 19), (0.05, 1))] = Field(
        default=0.0, ge=0, le=1, description="Probability that a new job never ends (as never_ending_object_types)."
    )
    late_files_seconds: Annotated[float, Draw.weighted((0.0, 3), (30.0, 1), (300.0, 1))] = Field(
        default=0.0,
        ge=0,
        description="The job reports COMPLETED while its last file is still to come: that file is written this "
        "long after COMPLETED (times time_scale).",
    )
    file_delay_seconds: Annotated[float, Draw.weighted((0.0, 2), (5.0, 1), (60.0, 1))] = Field(
        default=0.0,
        ge=0,
        description="Every file appears this long after it was due (times time_scale): the first file later, the "
        "last ones possibly after COMPLETED.",
    )
    empty_status_seconds: Annotated[float, Draw.weighted((0.0, 2), (5.0, 1), (30.0, 1))] = Field(
        default=0.0,
        ge=0,
        description="After a Create that started a job, List shows the association without the fields of "
        "empty_status_fields for this long (times time_scale).",
    )
    empty_status_fields: Annotated[
        Literal["both", "LastExecutionStatus", "ExecutionConfiguration"],
        Draw.choice("both", "LastExecutionStatus", "ExecutionConfiguration"),
    ] = Field(default="both", description="Which fields empty_status_seconds leaves out.")
    status_regression_seconds: Annotated[float, Draw.weighted((0.0, 3), (10.0, 1), (60.0, 1))] = Field(
        default=0.0,
        ge=0,
        description="Once List has shown a job COMPLETED or FAILED, it shows IN_PROGRESS again for this long "
        "(times time_scale), then the final status again (for a share status_regression_rate of jobs).",
    )
    status_regression_rate: Annotated[float, Draw.choice(0.5, 1.0)] = Field(
        default=1.0, ge=0, le=1, description="Share of finished jobs whose status goes backwards."
    )
    access_denied_operations: list[str] = Field(
        default_factory=list,
        description="Operation names answered with AccessDeniedException whatever the caller's policies.",
    )
    lag_minutes: float = Field(
        default=30.0, ge=0, description="Objects updated this recently before a job's request are left out."
    )
    records_per_file: Annotated[int, Draw.choice(10, 100, 1000)] = Field(
        default=100, ge=1, description="Maximum records per exported file."
    )
    time_scale: float = Field(
        default=1.0, ge=0, description="Multiplies every emulator duration (0.01: a 1 s knob lasts 10 ms)."
    )
    clock_offset_ms: int = Field(
        default=0, description="Emulator now = wall clock + this offset (`now_ms` sets it from a wanted time)."
    )
    max_concurrent_jobs: int = Field(
        default=20,
        ge=0,
        description="IN_PROGRESS jobs per account and Region before ResourceQuotaExceededException (Create and "
        "Update).",
    )
    max_data_integrations: int = Field(
        default=20, ge=0, description="Data integrations per Region before ResourceQuotaExceededException."
    )
    random_seed: Annotated[int, Draw.seed()] = Field(
        default=0, description="Seed of every random fault decision (re-seeded whenever it is set)."
    )
    # Declared last so that drawing it does not shift the draws of the knobs above for a given seed.
    merge_updates_last_updated: Annotated[bool, Draw.choice(True, False)] = Field(
        default=True,
        description="MergeProfiles (POST /_emulator/merge): whether each object moved to the main profile gets "
        "lastUpdated = the merge time (so the next incremental export shows its new ProfileId); false: it keeps "
        "its lastUpdated and no incremental export shows the move. AWS does not document which. The main "
        "profile's lastUpdated becomes the merge time either way (never earlier than it was).",
    )

    @field_validator("access_denied_operations")
    @classmethod
    def _known_operations(cls, value: list[str]) -> list[str]:
        if "*" in value:
            raise ValueError("access_denied_operations takes operation names, not *")
        return _known_operation_names(value)

    @model_validator(mode="before")
    @classmethod
    def _now_ms_sets_offset(cls, data: Any) -> Any:
        # A demo thinks in "what time is it", not in offsets: translate once, at validation time.
        if isinstance(data, dict) and "now_ms" in data:
            data = dict(data)
            now_ms = data.pop("now_ms")
            if isinstance(now_ms, bool) or not isinstance(now_ms, int):
                raise ValueError("now_ms must be an integer number of epoch milliseconds")
            data["clock_offset_ms"] = now_ms - wall_clock_ms()
        return data

    def duration_for(self, object_type: str) -> float:
        """Return the wall-clock seconds a job for ``object_type`` lasts (time_scale applied)."""
        base = self.job_duration_by_object_type.get(object_type, self.job_duration_seconds)
        return base * self.time_scale

    def scaled(self, seconds: float) -> float:
        """Return the wall-clock seconds a knob's duration lasts (time_scale applied)."""
        return seconds * self.time_scale

    def now_ms(self) -> int:
        """Return the emulator clock (wall clock + clock_offset_ms) in epoch milliseconds."""
        return wall_clock_ms() + self.clock_offset_ms


# ----------------------------------------------------------------- reading the declarations


def _draw_of(info: FieldInfo) -> Draw | None:
    return next((m for m in info.metadata if isinstance(m, Draw)), None)


def drawn_knobs() -> Iterator[tuple[str, Draw]]:
    """Every knob ``random_faults`` draws, with its Draw, in declaration order."""
    for name, info in EmulatorConfig.model_fields.items():
        draw = _draw_of(info)
        if draw is not None:
            yield name, draw


def _type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is Annotated:
        return _type_name(args[0])
    if origin is Literal:
        return " or ".join(json.dumps(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in args)
    if origin is not None:
        return f"{getattr(origin, '__name__', str(origin))}[{', '.join(_type_name(a) for a in args)}]"
    if annotation is type(None):
        return "null"
    return str(getattr(annotation, "__name__", annotation))


def _default_of(info: FieldInfo) -> Any:
    if info.default_factory is not None:
        return info.default_factory()  # type: ignore[call-arg]
    return info.default


def knob_rows() -> list[tuple[str, str, str, str, str]]:
    """(knob, type, default, meaning, random draw) of every knob, in declaration order."""
    rows = []
    for name, info in EmulatorConfig.model_fields.items():
        draw = _draw_of(info)
        rows.append(
            (
                name,
                _type_name(info.annotation),
                json.dumps(_default_of(info)),
                info.description or "",
                draw.describe if draw is not None else "not drawn",
            )
        )
    return rows


def knob_table() -> str:
    """The README's knob table, in Markdown, generated from the declarations."""
    lines = ["| knob | type | default | meaning | random draw |", "|---|---|---|---|---|"]
    for row in knob_rows():
        name, type_name, default, meaning, draw = (cell.replace("|", "\\|") for cell in row)
        lines.append(f"| `{name}` | {type_name} | `{default}` | {meaning} | {draw} |")
    return "\n".join(lines) + "\n"
