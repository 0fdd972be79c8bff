"""The S3 layout of bulk exports: the one module that renders or parses `yyyyMMddTHHmmss`.

Documented layout: `{prefix}/{account}/{domain}/{requestTs}/{start}-{end}/{objectType}/{uuid}`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from cpexport.models import ExportWindow

_STAMP_FORMAT = "%Y%m%dT%H%M%S"
_STAMP = r"\d{8}T\d{6}"
_KEY_PATTERN = re.compile(
    rf"^(?:(?P<prefix>.+)/)?(?P<account>\d{{12}})/(?P<domain>[^/]+)/(?P<request>{_STAMP})/"
    rf"(?P<start>{_STAMP})-(?P<end>{_STAMP})/(?P<object_type>[^/]+)/(?P<name>[^/]+)$"
)


def render_stamp(value: datetime) -> str:
    """`yyyyMMdd'T'HHmmss` in UTC, as the export's folders name times."""
    return value.astimezone(UTC).strftime(_STAMP_FORMAT)


def parse_stamp(text: str) -> datetime:
    """The UTC datetime of a `yyyyMMdd'T'HHmmss` folder name."""
    return datetime.strptime(text, _STAMP_FORMAT).replace(tzinfo=UTC)


def window_folder(window: ExportWindow) -> str:
    """The `{start}-{end}` folder of a window."""
    return f"{render_stamp(window.start)}-{render_stamp(window.end)}"


def domain_root(prefix: str, account_id: str, domain_name: str) -> str:
    """`{prefix}/{account}/{domain}/`: the folder under which every job of a domain writes."""
    head = f"{prefix.strip('/')}/" if prefix.strip("/") else ""
    return f"{head}{account_id}/{domain_name}/"


def export_folder(root: str, request_stamp: str, window: ExportWindow, object_type: str) -> str:
    """The folder of one job's files for one object type."""
    return f"{root}{request_stamp}/{window_folder(window)}/{object_type}/"


def manifest_key(root: str, request_stamp: str, window: ExportWindow, object_type: str) -> str:
    """Where the manifest goes: beside the object type's export folder, not inside it."""
    return f"{root}{request_stamp}/{window_folder(window)}/{object_type}.manifest.json"


@dataclass(frozen=True)
class ExportKey:
    """The parts of one exported file's key."""

    prefix: str
    account_id: str
    domain_name: str
    requested_at: datetime
    window_start: datetime
    window_end: datetime
    object_type: str
    name: str


def parse_export_key(key: str) -> ExportKey | None:
    """Parse an exported file's key; None when it does not follow the documented layout."""
    match = _KEY_PATTERN.match(key)
    if match is None:
        return None
    return ExportKey(
        prefix=match["prefix"] or "",
        account_id=match["account"],
        domain_name=match["domain"],
        requested_at=parse_stamp(match["request"]),
        window_start=parse_stamp(match["start"]),
        window_end=parse_stamp(match["end"]),
        object_type=match["object_type"],
        name=match["name"],
    )
