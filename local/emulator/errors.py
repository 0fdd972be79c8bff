"""Service errors, rendered in the rest-json form botocore turns into modeled exceptions."""

from __future__ import annotations

from typing import ClassVar


class ApiError(Exception):
    """An AWS-style error: the modeled error shape name, its HTTP status and a message.

    The HTTP status of each modeled error is read from botocore's model by the server
    (``error.httpStatusCode``); ``default_status`` is only the fallback for names the
    model does not define (e.g. ``UnknownOperationException``).
    """

    code: ClassVar[str] = "InternalServiceError"
    default_status: ClassVar[int] = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidRequestError(ApiError):
    """``InvalidRequestException`` (400): a request the service refuses as malformed or not allowed."""

    code = "InvalidRequestException"
    default_status = 400


class ResourceNotFoundError(ApiError):
    """``ResourceNotFoundException`` (404): an identifier that names nothing."""

    code = "ResourceNotFoundException"
    default_status = 404


class DuplicateResourceError(ApiError):
    """``DuplicateResourceException`` (409): a data integration name already taken."""

    code = "DuplicateResourceException"
    default_status = 409


class ResourceQuotaExceededError(ApiError):
    """``ResourceQuotaExceededException`` (429): too many concurrent export jobs."""

    code = "ResourceQuotaExceededException"
    default_status = 429


class ThrottlingError(ApiError):
    """``ThrottlingException`` (429): injected by the ``throttle_rate`` knob."""

    code = "ThrottlingException"
    default_status = 429


class InternalServiceError(ApiError):
    """``InternalServiceError`` (500): injected by the ``internal_error_rate`` knob."""

    code = "InternalServiceError"
    default_status = 500


class AccessDeniedError(ApiError):
    """``AccessDeniedException`` (403): unsigned/wrongly scoped requests or denied operations."""

    code = "AccessDeniedException"
    default_status = 403


class UnknownOperationError(ApiError):
    """No operation of the model matches the method and path (what AWS front ends answer)."""

    code = "UnknownOperationException"
    default_status = 404


class AuthenticationError(AccessDeniedError):
    """A request whose signature, key, token or date AWS would not accept.

    AWS front ends answer these with codes the AppIntegrations model does not declare
    (``aws_code``: UnrecognizedClientException, InvalidSignatureException, ...). The emulator sends
    the modeled ``AccessDeniedException`` by default and ``aws_code`` when the
    ``authentication_errors`` knob is ``aws``; the message is AWS's either way.
    """

    aws_code: ClassVar[str] = "AccessDeniedException"


class MissingAuthenticationTokenError(AuthenticationError):
    """No SigV4 Authorization header at all."""

    aws_code = "MissingAuthenticationTokenException"


class IncompleteSignatureError(AuthenticationError):
    """An Authorization header or date that is not well-formed SigV4."""

    aws_code = "IncompleteSignatureException"


class UnrecognizedClientError(AuthenticationError):
    """An access key or session token the account does not know."""

    aws_code = "UnrecognizedClientException"


class InvalidSignatureError(AuthenticationError):
    """A signature that does not verify: wrong secret, tampered request, wrong scope or a stale date."""

    aws_code = "InvalidSignatureException"


class MalformedRequestError(ApiError):
    """``BadRequestException`` (400): a request the front end cannot frame (its Content-Length, its body).

    AWS's front ends answer these before any operation is looked up; the connection is closed after the
    answer, since where the next request would begin is unknown.
    """

    code = "BadRequestException"
    default_status = 400


class LengthRequiredError(MalformedRequestError):
    """``LengthRequiredException`` (411): a body without a Content-Length (the emulator reads no chunked body)."""

    code = "LengthRequiredException"
    default_status = 411


class RequestEntityTooLargeError(MalformedRequestError):
    """``RequestEntityTooLargeException`` (413): a body over the front end's limit."""

    code = "RequestEntityTooLargeException"
    default_status = 413


class RequestTimeoutError(MalformedRequestError):
    """``RequestTimeoutException`` (408): the body declared by Content-Length did not arrive in time."""

    code = "RequestTimeoutException"
    default_status = 408


class ConnectionDropped(Exception):
    """Not an answer: the server closes the connection without a response (a ``connection_dropped`` fault)."""
