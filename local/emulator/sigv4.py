"""Authenticate a request as AWS does: recompute its SigV4 signature with the key's secret and compare.

The signature is recomputed by botocore's own signer (``SigV4Auth``) from what was received: method,
raw path, raw query, the headers the client says it signed, the payload hash, the date and the
credential scope. Dates are checked against the real wall clock (the signer's clock), never against
the emulator's ``clock_offset_ms``.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.compat import HTTPHeaders
from botocore.credentials import Credentials

from local.emulator.auth import Authorizer, CallerCredentials
from local.emulator.errors import (
    IncompleteSignatureError,
    InvalidSignatureError,
    MissingAuthenticationTokenError,
    UnrecognizedClientError,
)

ALGORITHM = "AWS4-HMAC-SHA256"
AMZ_DATE_FORMAT = "%Y%m%dT%H%M%SZ"
MAX_CLOCK_SKEW = timedelta(minutes=5)  # SigV4: a request must arrive within five minutes of its date.
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
SIGNATURE_MISMATCH = (
    "The request signature we calculated does not match the signature you provided. Check your AWS Secret "
    "Access Key and signing method. Consult the service documentation for details."
)
INVALID_TOKEN = "The security token included in the request is invalid."
_CREDENTIAL = re.compile(r"^(?P<key>[^/]+)/(?P<date>[^/]*)/(?P<region>[^/]*)/(?P<service>[^/]*)/(?P<terminal>[^/]*)$")


@dataclass(frozen=True)
class ReceivedRequest:
    """An HTTP request as the server read it (nothing decoded)."""

    method: str
    raw_path: str
    raw_query: str
    headers: Sequence[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (case-insensitive), or None."""
        lowered = name.lower()
        return next((value for key, value in self.headers if key.lower() == lowered), None)


@dataclass(frozen=True)
class _Authorization:
    access_key_id: str
    scope_date: str
    region: str
    service: str
    signed_headers: tuple[str, ...]
    signature: str


def _parse_authorization(value: str | None) -> _Authorization:
    if not value:
        raise MissingAuthenticationTokenError("Missing Authentication Token")
    algorithm, _, rest = value.strip().partition(" ")
    if algorithm != ALGORITHM:
        raise IncompleteSignatureError(f"Unsupported AWS 'algorithm': '{algorithm}' (expected {ALGORITHM})")
    parts: dict[str, str] = {}
    for item in rest.split(","):
        name, _, part = item.strip().partition("=")
        parts[name] = part
    missing = [name for name in ("Credential", "SignedHeaders", "Signature") if not parts.get(name)]
    if missing:
        raise IncompleteSignatureError(
            " ".join(f"Authorization header requires '{name}' parameter." for name in missing)
            + f" Authorization={value[:200]}"
        )
    credential = _CREDENTIAL.match(parts["Credential"])
    if credential is None or credential["terminal"] != "aws4_request":
        raise IncompleteSignatureError(
            f"Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/aws4_request, "
            f"got '{parts['Credential'][:200]}'"
        )
    return _Authorization(
        access_key_id=credential["key"],
        scope_date=credential["date"],
        region=credential["region"],
        service=credential["service"],
        signed_headers=tuple(parts["SignedHeaders"].split(";")),
        signature=parts["Signature"],
    )


def _check_date(amz_date: str | None, scope_date: str, now: datetime) -> None:
    if amz_date is None:
        raise IncompleteSignatureError(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."
        )
    try:
        signed_at = datetime.strptime(amz_date, AMZ_DATE_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        raise IncompleteSignatureError(
            f"X-Amz-Date must be in ISO-8601 basic format yyyyMMdd'T'HHmmss'Z' (got '{amz_date[:40]}')"
        ) from None
    if scope_date != amz_date[:8]:
        raise InvalidSignatureError(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: "
            f"'{scope_date}' != '{amz_date[:8]}', from 'X-Amz-Date'."
        )
    now_text = now.strftime(AMZ_DATE_FORMAT)
    if signed_at < now - MAX_CLOCK_SKEW:
        earliest = (now - MAX_CLOCK_SKEW).strftime(AMZ_DATE_FORMAT)
        raise InvalidSignatureError(
            f"Signature expired: {amz_date} is now earlier than {earliest} ({now_text} - 5 min.)"
        )
    if signed_at > now + MAX_CLOCK_SKEW:
        latest = (now + MAX_CLOCK_SKEW).strftime(AMZ_DATE_FORMAT)
        raise InvalidSignatureError(
            f"Signature not yet current: {amz_date} is still later than {latest} ({now_text} + 5 min.)"
        )


def expected_signature(
    request: ReceivedRequest, credentials: CallerCredentials, signed_headers: Sequence[str], region: str, service: str
) -> str:
    """The signature botocore's SigV4 signer gives ``request`` with these credentials and signed headers."""
    wanted = {name.lower() for name in signed_headers}
    headers = HTTPHeaders()
    for name, value in request.headers:
        if name.lower() in wanted:
            headers[name] = value  # HTTPHeaders keeps repeated headers, as the canonical form needs
    host = request.header("host") or ""
    url = f"http://{host}{request.raw_path}" + (f"?{request.raw_query}" if request.raw_query else "")
    aws_request = AWSRequest(method=request.method, url=url, data=request.body)
    aws_request.headers = headers
    amz_date = request.header("x-amz-date") or ""
    aws_request.context["timestamp"] = amz_date
    signer = SigV4Auth(
        Credentials(credentials.access_key_id, credentials.secret_access_key, credentials.session_token),
        service,
        region,
    )
    if signer.signed_headers(signer.headers_to_sign(aws_request)) != ";".join(signed_headers):
        # A header the client claims to have signed is missing (or one the signer never signs was listed).
        return ""
    canonical = signer.canonical_request(aws_request)
    signature: str = signer.signature(signer.string_to_sign(aws_request, canonical), aws_request)
    return signature


def authenticate(
    request: ReceivedRequest,
    authorizer: Authorizer,
    *,
    region: str,
    service: str,
    now: datetime | None = None,
) -> CallerCredentials:
    """Return the caller's credentials if ``request`` carries a valid SigV4 signature; else raise as AWS would."""
    auth = _parse_authorization(request.header("authorization"))
    credentials = authorizer.credentials(auth.access_key_id)
    if credentials is None:
        raise UnrecognizedClientError(INVALID_TOKEN)
    token = request.header("x-amz-security-token")
    if credentials.session_token is not None and token != credentials.session_token:
        raise UnrecognizedClientError(INVALID_TOKEN)
    _check_date(request.header("x-amz-date"), auth.scope_date, now or datetime.now(UTC))
    if auth.service != service:
        raise InvalidSignatureError(f"Credential should be scoped to correct service: '{service}'. ")
    if auth.region != region:
        raise InvalidSignatureError(f"Credential should be scoped to a valid region, not '{auth.region}'. ")
    if "host" not in auth.signed_headers:
        raise InvalidSignatureError("'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.")
    declared_hash = request.header("x-amz-content-sha256")
    if declared_hash not in (None, UNSIGNED_PAYLOAD, hashlib.sha256(request.body).hexdigest()):
        raise InvalidSignatureError("The provided 'x-amz-content-sha256' header does not match what was computed.")
    expected = expected_signature(request, credentials, auth.signed_headers, region, service)
    if not expected or not hmac.compare_digest(expected, auth.signature):
        raise InvalidSignatureError(SIGNATURE_MISMATCH)
    return credentials
