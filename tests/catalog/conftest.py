"""The catalog on moto Glue + S3, with exports written as the service and the indexer write them.

`Domain` holds each object's current version (what the emulator keeps); `Exporter.export` selects
what a job of a window would (start <= lastUpdated < end), writes JSON Lines files into the
documented layout (the emulator's own `layout` and line format), and, for a COMPLETED job, writes
the manifest beside the folder and registers the partition, as the indexer does, and (once
`Aws.create_catalog` made the current-state tables) merges it into its `_state` table with the
pipeline's own SQL, as the state machine does. A FAILED job leaves part of its files and nothing else.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from cpexport.catalog import catalog_plan, database_name, export_partitions, exports_root_location
from cpexport.clients import reset_clients
from cpexport.clients.glue import GlueCatalog
from cpexport.current_state import PartitionRef, create_statements, merge_statement
from cpexport.models import ExportWindow, render_utc
from cpexport.paths import domain_root, manifest_key
from moto import mock_aws

from local.athena.executor import AthenaEngine
from local.emulator.layout import export_folder, format_timestamp, new_file_key

ACCOUNT = "123456789012"
REGION = "us-east-1"
BUCKET = "exports-bucket"
PREFIX = "exports"
STACK = "customer-profiles-export"
DATABASE = database_name(STACK)
DAY_MS = 86_400_000
HOUR_MS = 3_600_000


def ms(value: datetime) -> int:
    return int(value.timestamp() * 1000)


T0 = ms(datetime(2026, 11, 1, tzinfo=UTC))


def at(epoch_ms: int) -> datetime:
    return datetime.fromtimestamp(epoch_ms / 1000, tz=UTC)


@dataclass
class Domain:
    """One domain's objects per type: id -> current version (what an export job selects from)."""

    name: str
    objects: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)

    def upsert(self, object_type: str, objects: list[dict[str, Any]]) -> None:
        store = self.objects.setdefault(object_type, {})
        for obj in objects:
            store[obj["id"]] = json.loads(json.dumps(obj))

    def current(self, object_type: str) -> dict[tuple[str, str], int]:
        return {(self.name, i): o["lastUpdated"] for i, o in self.objects.get(object_type, {}).items()}


@dataclass
class Export:
    manifest_key: str | None
    keys: list[str]
    selected: list[dict[str, Any]]


class Exporter:
    """Writes export jobs into moto S3 and indexes the completed ones into moto Glue."""

    def __init__(self, s3: Any, catalog: GlueCatalog, athena: AthenaEngine | None = None) -> None:
        self.s3 = s3
        self.catalog = catalog
        self.manifests: list[str] = []
        self.athena = athena

    def export(
        self,
        domain: Domain,
        object_type: str,
        start_ms: int,
        end_ms: int,
        request_ms: int,
        *,
        backfill: bool = False,
        fail: bool = False,
        records_per_file: int = 7,
        lines: list[str] | None = None,
    ) -> Export:
        selected = sorted(
            (o for o in domain.objects.get(object_type, {}).values() if start_ms <= o["lastUpdated"] < end_ms),
            key=lambda o: (o["lastUpdated"], o["id"]),
        )
        texts = lines if lines is not None else [json.dumps(o, ensure_ascii=False) for o in selected]
        chunks = [texts[i : i + records_per_file] for i in range(0, len(texts), records_per_file)]
        if fail:
            chunks = chunks[: (len(chunks) + 1) // 2]  # FAILED half-way: what was written stays
        folder = export_folder(PREFIX, ACCOUNT, domain.name, request_ms, start_ms, end_ms, object_type)
        keys = []
        for chunk in chunks:
            key = new_file_key(folder)
            self.s3.put_object(Bucket=BUCKET, Key=key, Body="".join(t + "\n" for t in chunk).encode())
            keys.append(key)
        if fail:
            return Export(None, keys, selected)
        window = ExportWindow(start=at(start_ms), end=at(end_ms))
        root = domain_root(PREFIX, ACCOUNT, domain.name)
        stamp = format_timestamp(request_ms)
        key = manifest_key(root, stamp, window, object_type)
        manifest = {
            "domainName": domain.name,
            "objectType": object_type,
            "window": window.to_wire(),
            "requestedAt": render_utc(at(request_ms)),
            "requestStamps": [stamp] if keys else [],
            "backfill": backfill,
            "fileCount": len(keys),
            "files": [{"key": k} for k in sorted(keys)],
        }
        self.s3.put_object(Bucket=BUCKET, Key=key, Body=json.dumps(manifest).encode())
        self.catalog.register_export(DATABASE, BUCKET, key, manifest)
        self.manifests.append(key)
        if self.athena is not None:
            # What the state machine does next: merge the export into its current-state table (the same SQL).
            refs = [PartitionRef(tuple(p.values)) for p in export_partitions(BUCKET, key, manifest)]
            self.athena.execute(merge_statement(DATABASE, object_type, refs), DATABASE)
        return Export(key, sorted(keys), selected)


@dataclass
class Aws:
    glue: Any
    s3: Any
    catalog: GlueCatalog
    exporter: Exporter

    def create_catalog(self, object_types: list[str]) -> dict[str, str]:
        """The catalog as Plan makes it, and the current-state tables as the state machine creates them."""
        location = exports_root_location(BUCKET, PREFIX, ACCOUNT)
        done = self.catalog.ensure_catalog(catalog_plan(DATABASE, object_types, location))
        engine = AthenaEngine(glue=self.glue, s3=self.s3)
        for object_type in object_types:
            for statement in create_statements(DATABASE, object_type, BUCKET, PREFIX):
                engine.execute(statement, DATABASE)
        self.exporter.athena = engine
        return done


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Aws]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    reset_clients()
    with mock_aws():
        glue = boto3.client("glue", region_name=REGION)
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=BUCKET)
        # What template.yaml's GlueDatabase creates (the harness creates it through the same API).
        glue.create_database(DatabaseInput={"Name": DATABASE})
        catalog = GlueCatalog(glue)
        yield Aws(glue, s3, catalog, Exporter(s3, catalog))
    reset_clients()
