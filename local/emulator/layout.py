"""The S3 layout of Customer Profiles bulk exports, as documented, in one place others can reuse.

``{prefix}/{AwsAccountId}/{DomainName}/{RequestTimestamp}/{StartTime}-{EndTime}/{ObjectTypeName}/{uuid}``
with timestamps rendered ``yyyyMMdd'T'HHmmss`` in UTC (15 characters) and no prefix segment when the
destination URI names only a bucket.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

TIMESTAMP_FORMAT = "%Y%m%dT%H%M%S"
TIMESTAMP_RE = r"\d{8}T\d{6}"
_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_UUID_RE = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


def format_timestamp(epoch_ms: int) -> str:
    """Render epoch milliseconds as the export's ``yyyyMMddTHHmmss`` (UTC, sub-second part dropped)."""
    return datetime.fromtimestamp(epoch_ms / 1000, tz=UTC).strftime(TIMESTAMP_FORMAT)


def parse_timestamp(text: str) -> int:
    """Parse a ``yyyyMMddTHHmmss`` UTC timestamp back to epoch milliseconds."""
    if not re.fullmatch(TIMESTAMP_RE, text):
        raise ValueError(f"not a yyyyMMddTHHmmss timestamp: {text!r}")
    return int(datetime.strptime(text, TIMESTAMP_FORMAT).replace(tzinfo=UTC).timestamp() * 1000)


def range_folder(start_ms: int, end_ms: int) -> str:
    """Render the ``{StartTime}-{EndTime}`` folder of an export of [start_ms, end_ms)."""
    return f"{format_timestamp(start_ms)}-{format_timestamp(end_ms)}"


def parse_destination(uri: str) -> tuple[str, str]:
    """Split ``s3://bucket`` or ``s3://bucket/prefix`` into (bucket, prefix); prefix has no outer slashes.

    Raises ValueError with a message naming what is wrong.
    """
    if not uri.startswith("s3://"):
        raise ValueError(f"DestinationURI must start with s3:// (got {uri!r})")
    rest = uri[len("s3://") :]
    bucket, _, prefix = rest.partition("/")
    if not _BUCKET_RE.match(bucket) or ".." in bucket:
        raise ValueError(f"DestinationURI names an invalid S3 bucket {bucket!r} (3-63 of a-z, 0-9, '.', '-')")
    prefix = prefix.strip("/")
    if "//" in prefix:
        raise ValueError(f"DestinationURI prefix {prefix!r} contains an empty path segment")
    return bucket, prefix


def export_folder(
    prefix: str, account_id: str, domain: str, request_ms: int, start_ms: int, end_ms: int, object_type: str
) -> str:
    """Return the key folder (no trailing slash) under which one export job writes its files."""
    parts = [
        prefix.strip("/"),
        account_id,
        domain,
        format_timestamp(request_ms),
        range_folder(start_ms, end_ms),
        object_type,
    ]
    return "/".join(p for p in parts if p)


def new_file_key(folder: str) -> str:
    """Return a fresh object key in ``folder``: a UUID4 with no extension, as the service names files."""
    return f"{folder}/{uuid.uuid4()}"


@dataclass(frozen=True)
class ExportKey:
    """The parts of one exported object's key."""

    prefix: str
    account_id: str
    domain: str
    request_timestamp: str
    start_timestamp: str
    end_timestamp: str
    object_type: str
    file_id: str

    @property
    def request_ms(self) -> int:
        """The job's request time in epoch ms (second precision)."""
        return parse_timestamp(self.request_timestamp)

    @property
    def start_ms(self) -> int:
        """The exported range's start in epoch ms (second precision)."""
        return parse_timestamp(self.start_timestamp)

    @property
    def end_ms(self) -> int:
        """The exported range's end in epoch ms (second precision)."""
        return parse_timestamp(self.end_timestamp)


_KEY_TAIL = re.compile(
    rf"(?P<account>\d{{12}})/(?P<domain>[^/]+)/(?P<request>{TIMESTAMP_RE})/"
    rf"(?P<start>{TIMESTAMP_RE})-(?P<end>{TIMESTAMP_RE})/(?P<object_type>[^/]+)/(?P<file_id>{_UUID_RE})$"
)


def parse_export_key(key: str) -> ExportKey:
    """Parse an exported object's key (prefix included, if any); raise ValueError if it is not one."""
    found = _KEY_TAIL.search(key)
    if not found or (found.start() > 0 and key[found.start() - 1] != "/"):
        raise ValueError(f"not a Customer Profiles export key: {key!r}")
    return ExportKey(
        prefix=key[: max(found.start() - 1, 0)],
        account_id=found["account"],
        domain=found["domain"],
        request_timestamp=found["request"],
        start_timestamp=found["start"],
        end_timestamp=found["end"],
        object_type=found["object_type"],
        file_id=found["file_id"],
    )
