"""Run-time knobs of the emulator (the unknowns of the real service made configurable)."""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


def wall_clock_ms() -> int:
    """Return the real wall clock in epoch milliseconds."""
    return int(time.time() * 1000)


class EmulatorConfig(BaseModel):
    """Knobs of the emulator; every field can be changed at run time via ``POST /_emulator/config``.

    ``now_ms`` is accepted as an input alias: it sets ``clock_offset_ms`` so that the
    emulator's clock reads ``now_ms`` at the moment the config is applied.
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    job_duration_seconds: float = Field(
        default=1.0, ge=0, description="Duration of one export job (before time_scale)."
    )
    job_duration_by_object_type: dict[str, Annotated[float, Field(ge=0)]] = Field(
        default_factory=dict, description="Per-object-type override of job_duration_seconds."
    )
    update_while_in_progress: Literal["reject", "accept"] = Field(
        default="reject",
        description="Update while the last job is IN_PROGRESS: InvalidRequestException, or start another job.",
    )
    stale_status_seconds: float = Field(
        default=0.0, ge=0, description="After an Update, List shows the previous job for this long (before time_scale)."
    )
    throttle_rate: float = Field(
        default=0.0, ge=0, le=1, description="Probability of ThrottlingException per API call."
    )
    internal_error_rate: float = Field(
        default=0.0, ge=0, le=1, description="Probability of InternalServiceError per call."
    )
    fail_object_types: list[str] = Field(default_factory=list, description="Jobs for these object types FAIL.")
    access_denied_operations: list[str] = Field(
        default_factory=list, description="Operation names answered with AccessDeniedException (missing IAM)."
    )
    lag_minutes: float = Field(
        default=30.0, ge=0, description="Objects updated this recently before a job are left out."
    )
    records_per_file: int = Field(default=100, ge=1, description="Maximum records per exported file.")
    time_scale: float = Field(default=1.0, ge=0, description="Multiplies every emulator duration (0.01: 1 s -> 10 ms).")
    clock_offset_ms: int = Field(default=0, description="Emulator now = wall clock + this offset.")
    max_concurrent_jobs: int = Field(default=20, ge=0, description="IN_PROGRESS jobs allowed per account and Region.")
    max_data_integrations: int = Field(
        default=20, ge=0, description="Data integrations allowed per Region (AWS default)."
    )
    random_seed: int = Field(default=0, description="Seed of the generator deciding throttling and internal errors.")

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
