"""Translate botocore errors into the pipeline's exception classes (names the ASL matches)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from botocore.exceptions import ClientError

from cpexport.errors import ExportQuotaExceeded, ExportRejected, TransientServiceError

TRANSIENT_CODES = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "ProvisionedThroughputExceededException",
        "InternalServiceError",
        "InternalServerError",
        "InternalError",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "SlowDown",
    }
)


def error_code(exc: ClientError) -> str:
    """The AWS error code of a ClientError."""
    return str(exc.response.get("Error", {}).get("Code", ""))


def error_message(exc: ClientError) -> str:
    """The AWS error message of a ClientError."""
    return str(exc.response.get("Error", {}).get("Message", "")) or str(exc)


@contextmanager
def translated(operation: str) -> Iterator[None]:
    """Re-raise a service error as the pipeline exception the state machine knows how to handle."""
    try:
        yield
    except ClientError as exc:
        code, message = error_code(exc), error_message(exc)
        if code in TRANSIENT_CODES:
            raise TransientServiceError(f"{operation}: {code}: {message}") from exc
        if code == "ResourceQuotaExceededException":
            raise ExportQuotaExceeded(f"{operation}: {message}") from exc
        if code in {"InvalidRequestException", "AccessDeniedException", "ResourceNotFoundException"}:
            raise ExportRejected(f"{operation}: {code}: {message}") from exc
        raise
