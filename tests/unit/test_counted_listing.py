"""The Distributed Map's children, added up, tell the same listing the Index would have made itself.

That is what lets the Map's listing be a settle listing: `counted_listing` of the children's answers must equal
`fingerprint` of the same folder, however the ItemBatcher cut it into batches.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from cpexport.clients.s3 import ExportedFile
from cpexport.indexing import count_batch, counted_listing, fingerprint
from cpexport.models import CountBatchInput, Counting
from hypothesis import given
from hypothesis import strategies as st

PREFIX = "exports/123456789012/shop/20261102T000006/20261101T000000-20261101T233000/_profile/"
PLAN = Counting(
    mode="distributed",
    bucket="exports-bucket",
    prefix=PREFIX,
    parts_prefix=PREFIX.removesuffix("/") + ".manifest.parts/",
    batch_size=200,
)


class FolderInMemory:
    """The export bucket's operations a child uses: each file holds `size` one-byte records."""

    bucket = "exports-bucket"

    def __init__(self, files: dict[str, int]) -> None:
        self.files = files
        self.written: dict[str, int] = {}

    def count_lines(self, key: str) -> int:
        return self.files[key]

    def write_lines(self, key: str, lines: Iterable[bytes], kms_key_arn: str | None = None) -> int:
        self.written[key] = sum(1 for _ in lines)
        return self.written[key]

    def list_folders(self, prefix: str, start_after: str | None = None) -> Iterator[str]:
        raise NotImplementedError

    def list_files(self, prefix: str) -> Iterator[ExportedFile]:
        raise NotImplementedError

    def has_files(self, prefix: str) -> bool:
        raise NotImplementedError

    def read_lines(self, key: str) -> Iterator[bytes]:
        raise NotImplementedError

    def put_json(self, key: str, document: Any, kms_key_arn: str | None = None) -> None:
        raise NotImplementedError


names = st.text(alphabet="0123456789abcdef-", min_size=1, max_size=36)


@given(
    files=st.dictionaries(names, st.integers(min_value=0, max_value=5_000), min_size=1, max_size=60),
    batch=st.integers(min_value=1, max_value=25),
)
def test_the_children_s_totals_are_the_listing_of_the_folder_however_it_is_batched(files, batch):
    folder = {f"{PREFIX}{name}": size for name, size in files.items()}
    bucket = FolderInMemory(folder)
    items = [{"Key": key, "Size": size, "Etag": '"e"'} for key, size in sorted(folder.items())]

    counted = [
        count_batch(CountBatchInput.model_validate({"Items": items[i : i + batch], "BatchInput": PLAN}), bucket, None)
        for i in range(0, len(items), batch)
    ]

    listed = fingerprint(["20261102T000006"], [ExportedFile(key=k, size=s, etag="e") for k, s in folder.items()])
    assert counted_listing(["20261102T000006"], PLAN, counted) == listed
    assert sum(batch.records for batch in counted) == sum(folder.values())


def test_a_file_replaced_by_another_of_the_same_size_changes_the_listing():
    # Given a folder counted once, then the same folder with its last file replaced by another of the same size
    before = {f"{PREFIX}a": 10, f"{PREFIX}b": 20}
    after = {f"{PREFIX}a": 10, f"{PREFIX}c": 20}

    def counted(folder: dict[str, int]) -> Any:
        items = [{"Key": key, "Size": size, "Etag": '"e"'} for key, size in sorted(folder.items())]
        answer = count_batch(
            CountBatchInput.model_validate({"Items": items, "BatchInput": PLAN}), FolderInMemory(folder), None
        )
        return counted_listing(["s"], PLAN, [answer])

    # Then the two counts tell different listings (same files and bytes, another last key)
    assert counted(before) != counted(after)
    assert (counted(before).files, counted(before).bytes) == (counted(after).files, counted(after).bytes)
