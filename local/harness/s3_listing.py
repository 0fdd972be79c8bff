"""S3 ListObjectsV2 pages in time proportional to the page, as on S3, not to the whole bucket.

moto 5.2.5's `S3Backend.list_objects_v2` builds every page from the whole bucket: it copies and walks
every key in Python, sorts the matches, then skips to the continuation token. A page of a 100,000-key
folder costs as much as the folder, so listing it costs 100 times the folder: 85 s offline where S3
takes seconds. Anything that lists more than its baseline (the index's settle listings) then looks
many times slower than it would on AWS. This replacement answers the same pages from a sorted index
of the bucket's key names (rebuilt only when a name is added or removed): the same keys, order,
truncation and continuation tokens as moto's own code, which still answers listings with a delimiter
(folders). `tests/unit/test_s3_listing.py` checks both give the same pages.
"""

from __future__ import annotations

import functools
import threading
from bisect import bisect_left, bisect_right
from collections.abc import Callable
from typing import Any

from moto.s3.models import FakeDeleteMarker, FakeTableStorageBucket, S3Backend
from moto.s3.utils import _VersionedKeyStore

_STAMP = "_harness_names_stamp"  # bumped whenever a key name is added or removed
_INDEX = "_harness_sorted_names"  # (stamp, sorted names)
_lock = threading.Lock()


def _bump(store: Any) -> None:
    with _lock:
        setattr(store, _STAMP, getattr(store, _STAMP, 0) + 1)


def noting_new_names(original: Callable[..., Any]) -> Any:
    """`_VersionedKeyStore.__setitem__` or `setlist` (key, value), noting when the key is a new name."""

    @functools.wraps(original)
    def replacement(store: Any, key: str, value: Any) -> Any:
        new = not dict.__contains__(store, key)
        result = original(store, key, value)
        if new:
            _bump(store)
        return result

    return replacement


def noting_removed_names(original: Callable[..., Any]) -> Any:
    """`_VersionedKeyStore.pop`, noting a removed name."""

    @functools.wraps(original)
    def pop(store: Any, key: str) -> Any:
        try:
            return original(store, key)
        finally:
            _bump(store)

    return pop


def _sorted_names(store: _VersionedKeyStore) -> list[str]:
    stamp = getattr(store, _STAMP, 0)
    cached = getattr(store, _INDEX, None)
    if cached is not None and cached[0] == stamp:
        names: list[str] = cached[1]
        return names
    names = sorted(dict(store))  # a copy first: other threads write meanwhile (as moto's own code does)
    setattr(store, _INDEX, (stamp, names))
    return names


def paged_list_objects_v2(original: Callable[..., Any]) -> Any:
    """The replacement of `S3Backend.list_objects_v2` (without a delimiter; with one, moto's own)."""

    @functools.wraps(original)
    def list_objects_v2(
        backend: S3Backend,
        bucket: Any,
        prefix: str | None,
        delimiter: str | None,
        continuation_token: str | None,
        start_after: str | None,
        max_keys: int,
    ) -> tuple[list[Any], bool, str | None]:
        if delimiter or isinstance(bucket, FakeTableStorageBucket):
            return original(backend, bucket, prefix, delimiter, continuation_token, start_after, max_keys)  # type: ignore[no-any-return]
        store = bucket.keys
        names = _sorted_names(store)
        prefix = prefix or ""
        first = bisect_left(names, prefix)
        limit = backend._pagination_tokens.get(continuation_token) if continuation_token else start_after
        if limit:
            first = max(first, bisect_right(names, limit))
        found: list[Any] = []
        for name in names[first:]:
            if not name.startswith(prefix) or len(found) > max_keys:
                break
            key = store.get(name)
            if key is not None and not isinstance(key, FakeDeleteMarker):
                found.append(key)
        return backend._truncate_result(found, max_keys)  # type: ignore[no-any-return]

    return list_objects_v2
