"""The harness's ListObjectsV2 pages are moto's own pages, only built from an index of the bucket's names.

In-process moto (`mock_aws`), so not in tests/harness: there a package-scoped offline stack may be running
in the same worker, whose request gate refuses mock_aws's keys and whose state mock_aws's reset would wipe.
"""

from __future__ import annotations

import random
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.s3.models import S3Backend, s3_backends
from moto.s3.utils import _VersionedKeyStore

from local.harness import s3_listing

ACCOUNT, REGION = "123456789012", "us-east-1"


@pytest.fixture
def s3() -> Any:
    with mock_aws():
        yield boto3.client("s3", region_name=REGION)


def _pages(backend: Any, listing: Any, bucket: str, prefix: str | None, page: int, start_after: str | None) -> list:
    """Every page of a listing as (names, truncated), following continuation tokens."""
    pages, token = [], None
    while True:
        keys, truncated, token = listing(backend, backend.get_bucket(bucket), prefix, None, token, start_after, page)
        pages.append(([k.name for k in keys], truncated))
        if not truncated:
            return pages


def test_pages_match_motos_own_for_prefixes_tokens_start_after_and_deletions(s3: Any) -> None:
    # Given a versioned bucket with folders of keys, some overwritten and some deleted (delete markers)
    s3.create_bucket(Bucket="listing")
    s3.put_bucket_versioning(Bucket="listing", VersioningConfiguration={"Status": "Enabled"})
    rng = random.Random(7)
    names = [f"{folder}/{rng.randrange(10**6):06d}" for folder in ("a", "ab", "b/c", "b/d") for _ in range(60)]
    for name in names:
        s3.put_object(Bucket="listing", Key=name, Body=b"x")
    for name in rng.sample(names, 30):
        s3.put_object(Bucket="listing", Key=name, Body=b"again")
    for name in rng.sample(names, 25):
        s3.delete_object(Bucket="listing", Key=name)
    backend = s3_backends[ACCOUNT]["aws"]
    original = backend.__class__.list_objects_v2
    paged = s3_listing.paged_list_objects_v2(original)

    for prefix in (None, "", "a", "a/", "ab", "b/", "b/c/", "zz"):
        for page in (0, 1, 7, 1000):
            for start_after in (None, "a/5", "b/"):
                # Then every page (names, truncation) is moto's
                assert _pages(backend, paged, "listing", prefix, page, start_after) == _pages(
                    backend, original, "listing", prefix, page, start_after
                ), (prefix, page, start_after)


def test_a_key_written_between_pages_is_listed_when_it_sorts_after_the_token(
    s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the harness's listing installed (as MotoPatches installs it) and a listing past its first page
    monkeypatch.setattr(S3Backend, "list_objects_v2", s3_listing.paged_list_objects_v2(S3Backend.list_objects_v2))
    for name, wrap in (
        ("__setitem__", s3_listing.noting_new_names),
        ("setlist", s3_listing.noting_new_names),
        ("pop", s3_listing.noting_removed_names),
    ):
        monkeypatch.setattr(_VersionedKeyStore, name, wrap(getattr(_VersionedKeyStore, name)))
    s3.create_bucket(Bucket="growing")
    for i in range(10):
        s3.put_object(Bucket="growing", Key=f"f/{i:02d}", Body=b"x")
    first = s3.list_objects_v2(Bucket="growing", Prefix="f/", MaxKeys=5)
    # When a key is written after it, and one is deleted
    s3.put_object(Bucket="growing", Key="f/99", Body=b"late")
    s3.delete_object(Bucket="growing", Key="f/07")
    rest = s3.list_objects_v2(
        Bucket="growing", Prefix="f/", MaxKeys=5, ContinuationToken=first["NextContinuationToken"]
    )
    # Then the next page sees both changes, as S3's would
    listed = [o["Key"] for o in first["Contents"] + rest["Contents"]]
    assert listed == [f"f/{i:02d}" for i in range(10) if i != 7] + ["f/99"]
