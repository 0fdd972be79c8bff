"""Translate botocore errors into the pipeline's exception classes (names the ASL matches)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError

from cpexport.errors import (
    DataIntegrationQuotaExceeded,
    ExportQuotaExceeded,
    ExportRejected,
    TransientServiceError,
)

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
        # Credentials that expired between signing and arrival: the next attempt signs afresh.
        "ExpiredTokenException",
        "RequestExpired",
    }
)

# Refusals that no retry fixes: a bad request, a missing permission, a key the service does not know.
REFUSED_CODES = frozenset(
    {
        "InvalidRequestException",
        "AccessDeniedException",
        "AccessDenied",
        "ResourceNotFoundException",
        "UnrecognizedClientException",
        "InvalidSignatureException",
        "IncompleteSignatureException",
        "MissingAuthenticationTokenException",
    }
)


def error_code(exc: ClientError) -> str:
    """The AWS error code of a ClientError."""
    return str(exc.response.get("Error", {}).get("Code", ""))


def error_message(exc: ClientError) -> str:
    """The AWS error message of a ClientError."""
    return str(exc.response.get("Error", {}).get("Message", "")) or str(exc)


DATA_INTEGRATION_QUOTA_HINT = (
    "AppIntegrations allows a limited number of data integrations per Region (quota 'Data integrations', "
    "20 by default, shared with other Amazon Connect features); this stack needs one per domain and object "
    "type. Raise the quota in Service Quotas (AppIntegrations) or export fewer object types; waiting will "
    "not help"
)


@contextmanager
def translated(operation: str) -> Iterator[None]:
    """Re-raise a service error as the pipeline exception the state machine knows how to handle."""
    try:
        yield
    except (BotoConnectionError, HTTPClientError) as exc:
        # The request may or may not have reached the service: retried, and callers treat it as ambiguous.
        raise TransientServiceError(f"{operation}: {type(exc).__name__}: {exc}") from exc
    except ClientError as exc:
        code, message = error_code(exc), error_message(exc)
        if code in TRANSIENT_CODES:
            raise TransientServiceError(f"{operation}: {code}: {message}") from exc
        if code == "ResourceQuotaExceededException" and operation == "CreateDataIntegration":
            raise DataIntegrationQuotaExceeded(f"{operation}: {message}. {DATA_INTEGRATION_QUOTA_HINT}") from exc
        if code == "ResourceQuotaExceededException":
            raise ExportQuotaExceeded(f"{operation}: {message}") from exc
        if code in REFUSED_CODES:
            raise ExportRejected(f"{operation}: {code}: {message}") from exc
        raise
