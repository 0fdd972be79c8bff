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
    stale_status_seconds: Annotated[float, Draw.choice(0.0, 0.0, 10.0, 60.0)] = Field(
        default=0.0,
        ge=0,
        description="After an Update, List shows the previous job's status and ExecutionConfiguration for this "
        "long (times time_scale).",
    )
    throttle_rate: Annotated[float, Draw.choice(0.0, 0.0, 0.0, 0.02, 0.1)] = Field(
        default=0.0, ge=0, le=1, description="Probability of ThrottlingException per API call (any operation)."
    )
    internal_error_rate: Annotated[float, Draw.choice(0.0, 0.0, 0.0, 0.01, 0.05)] = Field(
        default=0.0, ge=0, le=1, description="Probability of InternalServiceError per API call (any operation)."
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

    @field_validator("access_denied_operations")
    @classmethod
    def _known_operations(cls, value: list[str]) -> list[str]:
        # A typo here would silently deny nothing: check names against botocore's model.
        from local.emulator.model import service_model

        unknown = sorted(set(value) - set(service_model().operation_names))
        if unknown:
            raise ValueError(f"unknown AppIntegrations operations: {unknown}")
        return value

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
