"""The functions' environment, read once into one settings model."""

from __future__ import annotations

import os
from functools import lru_cache

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from cpexport.errors import ConfigurationError
from cpexport.models import UtcDatetime
from cpexport.polling import DENSE_FRACTION, FLOOR_SECONDS, Prediction, next_wait
from cpexport.retention import MAX_RETENTION_DAYS, MIN_RETENTION_DAYS

# The documented worst-case ingestion lag of bulk export: a window must end this long before now.
MIN_SAFETY_LAG_MINUTES = 30
MAX_CONCURRENT_EXPORT_JOBS = 20
# template.yaml grants the profile:* actions to at most this many domains (CloudFormation cannot build
# a list of ARNs of unknown length): an eleventh would be denied by IAM at its first export.
MAX_DOMAINS = 10
# The holder deadline's margin beyond polling to ExportTimeoutHours and every settle attempt.
HOLDER_DEADLINE_MARGIN_SECONDS = 3600


def holder_deadline_seconds(
    export_timeout_hours: float, index_settle_seconds: float, index_settle_attempts: int
) -> float:
    """ExportTimeoutHours + every settle attempt + 1 hour: how long a job's own execution may take to record it.

    The default of `LEASE_HOLDER_DEADLINE_SECONDS`; the offline stack scales it from the same inputs.
    """
    return export_timeout_hours * 3600 + index_settle_seconds * index_settle_attempts + HOLDER_DEADLINE_MARGIN_SECONDS


def _split_list(value: object) -> object:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


class Settings(BaseModel):
    """Everything a function needs to know about its deployment (from template.yaml's environment)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    stack_name: str = Field(min_length=1)
    account_id: str = Field(pattern=r"^\d{12}$")
    region: str = Field(min_length=1)
    domain_names: list[str] = Field(min_length=1, max_length=MAX_DOMAINS)
    object_types: list[str] = Field(min_length=1)
    export_bucket_name: str = Field(min_length=3)
    export_prefix: str = ""
    kms_key_arn: str = Field(pattern=r"^arn:aws[-a-z]*:kms:")
    state_table_name: str = Field(min_length=1)
    idempotency_table_name: str = ""
    topic_arn: str = ""
    event_bus_name: str = "default"
    event_source: str = "customer-profiles-export"
    safety_lag_minutes: int = Field(default=MIN_SAFETY_LAG_MINUTES, ge=MIN_SAFETY_LAG_MINUTES)
    initial_start_time: UtcDatetime
    max_concurrent_exports: int = Field(default=5, ge=1, le=MAX_CONCURRENT_EXPORT_JOBS)
    export_timeout_hours: float = Field(default=24, gt=0)
    # The detection-lag goal of the poll schedule: a job is seen within max(floor, fraction x its length).
    poll_floor_seconds: int = Field(default=FLOOR_SECONDS, ge=1)
    poll_lag_fraction: float = Field(default=DENSE_FRACTION, gt=0, le=1)
    # Files may still appear for a while after a job reports COMPLETED: the index waits until two
    # listings this far apart agree, and gives up (watermark unmoved) after this many tries.
    index_settle_seconds: int = Field(default=120, ge=1)
    index_settle_attempts: int = Field(default=10, ge=1)
    # Wall-clock rules of Start (see `exports`): how long an unsubmitted lease of another execution is
    # respected, and how long the listing gets to show a job whose submission answered an error.
    unsubmitted_lease_ttl_seconds: int = Field(default=1200, ge=1)
    ambiguous_submit_grace_seconds: int = Field(default=300, ge=1)
    # How long the execution that submitted a job may take to record its outcome (poll until
    # ExportTimeoutHours, settle, index) before another request, once the service shows the job ended,
    # may take the object type over from it; empty: ExportTimeoutHours + every settle attempt + 1 hour.
    lease_holder_deadline_seconds: int | None = Field(default=None, ge=1)
    count_records: bool = True
    # Up to this many files a job's records are counted by the Index function itself; above it, by a
    # Distributed Map (see `make bench` for where the two cross).
    inline_index_max_files: int = Field(default=1000, ge=0)

    # Days the export bucket keeps raw export files and manifests (0: forever); see `cpexport.retention`.
    raw_export_retention_days: int = Field(default=0, ge=0, le=MAX_RETENTION_DAYS)

    _split_domains = field_validator("domain_names", "object_types", mode="before")(_split_list)

    @field_validator("export_prefix")
    @classmethod
    def _strip_slashes(cls, value: str) -> str:
        return value.strip("/")

    @field_validator("raw_export_retention_days")
    @classmethod
    def _longer_than_the_margin(cls, value: int) -> int:
        # Shorter, partitions would be dropped as soon as they are registered (template.yaml refuses it too).
        if 0 < value < MIN_RETENTION_DAYS:
            raise ValueError(f"must be 0 (keep forever) or at least {MIN_RETENTION_DAYS}")
        return value

    @property
    def holder_deadline_seconds(self) -> float:
        """Seconds after its submission within which a job's own execution may still record it."""
        if self.lease_holder_deadline_seconds is not None:
            return float(self.lease_holder_deadline_seconds)
        return holder_deadline_seconds(self.export_timeout_hours, self.index_settle_seconds, self.index_settle_attempts)

    def poll_wait(self, waited_seconds: float, prediction: Prediction | None) -> int:
        """Seconds to wait before the next poll of a job submitted `waited_seconds` ago."""
        return next_wait(
            waited_seconds, prediction, floor=self.poll_floor_seconds, dense_fraction=self.poll_lag_fraction
        )

    @property
    def destination_uri(self) -> str:
        """The association's DestinationURI: `s3://bucket` or `s3://bucket/prefix`."""
        suffix = f"/{self.export_prefix}" if self.export_prefix else ""
        return f"s3://{self.export_bucket_name}{suffix}"


# Each setting's environment variable (template.yaml's Globals and the functions' Environment).
ENV_NAMES = {
    "stack_name": "STACK_NAME",
    "account_id": "ACCOUNT_ID",
    "region": "AWS_REGION",
    "domain_names": "DOMAIN_NAMES",
    "object_types": "OBJECT_TYPES",
    "export_bucket_name": "EXPORT_BUCKET_NAME",
    "export_prefix": "EXPORT_PREFIX",
    "kms_key_arn": "KMS_KEY_ARN",
    "state_table_name": "STATE_TABLE_NAME",
    "idempotency_table_name": "IDEMPOTENCY_TABLE_NAME",
    "topic_arn": "NOTIFICATION_TOPIC_ARN",
    "event_bus_name": "EVENT_BUS_NAME",
    "event_source": "EVENT_SOURCE",
    "safety_lag_minutes": "SAFETY_LAG_MINUTES",
    "initial_start_time": "INITIAL_START_TIME",
    "max_concurrent_exports": "MAX_CONCURRENT_EXPORTS",
    "export_timeout_hours": "EXPORT_TIMEOUT_HOURS",
    "poll_floor_seconds": "POLL_FLOOR_SECONDS",
    "poll_lag_fraction": "POLL_LAG_FRACTION",
    "index_settle_seconds": "INDEX_SETTLE_SECONDS",
    "index_settle_attempts": "INDEX_SETTLE_ATTEMPTS",
    "count_records": "COUNT_RECORDS",
    "unsubmitted_lease_ttl_seconds": "UNSUBMITTED_LEASE_TTL_SECONDS",
    "ambiguous_submit_grace_seconds": "AMBIGUOUS_SUBMIT_GRACE_SECONDS",
    "inline_index_max_files": "INLINE_INDEX_MAX_FILES",
    "lease_holder_deadline_seconds": "LEASE_HOLDER_DEADLINE_SECONDS",
    "raw_export_retention_days": "RAW_EXPORT_RETENTION_DAYS",
}


def load_settings(environ: dict[str, str] | os._Environ[str] = os.environ) -> Settings:
    """Read the settings from an environment; a bad deployment fails with every problem named."""
    values = {field: environ[name] for field, name in ENV_NAMES.items() if environ.get(name, "") != ""}
    if "region" not in values and environ.get("AWS_DEFAULT_REGION"):
        values["region"] = environ["AWS_DEFAULT_REGION"]
    try:
        return Settings.model_validate(values)
    except ValidationError as exc:
        problems = "; ".join(
            f"{ENV_NAMES.get(str(err['loc'][0]), err['loc'][0]) if err['loc'] else 'environment'}: {err['msg']}"
            for err in exc.errors()
        )
        raise ConfigurationError(f"invalid function environment: {problems}") from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The settings of this process, read once."""
    return load_settings()
