"""The export bucket: listing a job's files, counting their records, writing manifests."""

from __future__ import annotations

import io
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from cpexport.clients import client
from cpexport.clients.translate import translated

# A manifest part buffered in memory before it is uploaded (S3's minimum part is 5 MiB).
PART_BYTES = 8 * 1024 * 1024
# Reads of a streamed body: botocore's default is 1 KiB, a Python loop turn per KiB of an export file.
READ_CHUNK_BYTES = 64 * 1024


@dataclass(frozen=True)
class ExportedFile:
    key: str
    size: int
    etag: str


class ExportBucket:
    """Read and write the export bucket through paginators."""

    def __init__(self, bucket: str, api: Any | None = None) -> None:
        self.bucket = bucket
        self._api = api if api is not None else client("s3")

    def list_folders(self, prefix: str, start_after: str | None = None) -> Iterator[str]:
        """Immediate sub-folders of `prefix` (CommonPrefixes), in key order, after `start_after`."""
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix, "Delimiter": "/"}
        if start_after:
            kwargs["StartAfter"] = start_after
        with translated("ListObjectsV2"):
            for page in self._api.get_paginator("list_objects_v2").paginate(**kwargs):
                for common in page.get("CommonPrefixes", []):
                    yield str(common["Prefix"])

    def has_files(self, prefix: str) -> bool:
        """Whether anything lies under `prefix` (one request, one key at most)."""
        with translated("ListObjectsV2"):
            response = self._api.list_objects_v2(Bucket=self.bucket, Prefix=prefix, MaxKeys=1)
        return bool(response.get("Contents"))

    def list_files(self, prefix: str) -> Iterator[ExportedFile]:
        """Every object under `prefix`."""
        with translated("ListObjectsV2"):
            for page in self._api.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
                for item in page.get("Contents", []):
                    yield ExportedFile(key=item["Key"], size=int(item["Size"]), etag=str(item["ETag"]).strip('"'))

    def count_lines(self, key: str) -> int:
        """Records in a JSON Lines file: its non-empty lines, read as a stream."""
        with translated("GetObject"):
            body = self._api.get_object(Bucket=self.bucket, Key=key)["Body"]
            count = 0
            for line in body.iter_lines(chunk_size=READ_CHUNK_BYTES):
                if line.strip():
                    count += 1
            return count

    def read_lines(self, key: str) -> Iterator[bytes]:
        """The non-empty lines of an object, read as a stream."""
        with translated("GetObject"):
            body = self._api.get_object(Bucket=self.bucket, Key=key)["Body"]
            for line in body.iter_lines(chunk_size=READ_CHUNK_BYTES):
                if line.strip():
                    yield line

    def write_lines(self, key: str, lines: Iterable[bytes], kms_key_arn: str | None = None) -> int:
        """Write lines (each gets a newline) as one object without holding them all: a multipart upload
        in PART_BYTES parts once the text outgrows one part. Returns how many lines were written."""
        extra: dict[str, Any] = {"ContentType": "application/x-ndjson"}
        if kms_key_arn:
            extra |= {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": kms_key_arn}
        buffer, count, upload_id = io.BytesIO(), 0, None
        parts: list[dict[str, Any]] = []
        try:
            for line in lines:
                buffer.write(line + b"\n")
                count += 1
                if buffer.tell() >= PART_BYTES:
                    if upload_id is None:
                        with translated("CreateMultipartUpload"):
                            upload_id = self._api.create_multipart_upload(Bucket=self.bucket, Key=key, **extra)[
                                "UploadId"
                            ]
                    parts.append(self._upload_part(key, upload_id, len(parts) + 1, buffer.getvalue()))
                    buffer = io.BytesIO()
            if upload_id is None:
                with translated("PutObject"):
                    self._api.put_object(Bucket=self.bucket, Key=key, Body=buffer.getvalue(), **extra)
                return count
            if buffer.tell():
                parts.append(self._upload_part(key, upload_id, len(parts) + 1, buffer.getvalue()))
            with translated("CompleteMultipartUpload"):
                self._api.complete_multipart_upload(
                    Bucket=self.bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
                )
            return count
        except BaseException:
            if upload_id is not None:
                with translated("AbortMultipartUpload"):
                    self._api.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
            raise

    def _upload_part(self, key: str, upload_id: str, number: int, body: bytes) -> dict[str, Any]:
        with translated("UploadPart"):
            response = self._api.upload_part(
                Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=body
            )
        return {"PartNumber": number, "ETag": response["ETag"]}

    def put_json(self, key: str, document: Any, kms_key_arn: str | None = None) -> None:
        """Write a JSON document (encrypted with the export key when one is given)."""
        extra: dict[str, Any] = {}
        if kms_key_arn:
            extra = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": kms_key_arn}
        with translated("PutObject"):
            self._api.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=json.dumps(document, sort_keys=True, separators=(",", ":")).encode(),
                ContentType="application/json",
                **extra,
            )
