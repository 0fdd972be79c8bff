"""A Distributed Map runs offline as on AWS: every S3 page, ItemBatcher batches, tolerance, permissions.

The fixture workflow's `list` action maps over a prefix of its data bucket (one child per object);
`listInBatches` does the same with an ItemBatcher whose limits, BatchInput and tolerance come from
the execution input, and whose children fail when their BatchInput says so.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from botocore.exceptions import ClientError
from moto.s3.models import s3_backends

from local.harness import OfflineStack
from local.harness.distributed_map import (
    MAX_INPUT_BYTES_PER_BATCH,
    InvalidItemBatcher,
    MapRunSettings,
    batches,
    s3_item,
    split_map_runs,
    tolerance_exceeded,
)
from tests.strict.conftest import policy_document

BATCHED: dict[str, Any] = {"action": "listInBatches", "label": "L", "failChild": False, "toleratedFailures": 0}


def _put_objects(stack: OfflineStack, prefix: str, count: int) -> list[str]:
    """Objects of 1 byte under `prefix`, written into moto's S3 in-process (setup, not under test)."""
    bucket = stack.outputs["DataBucketName"]
    backend = s3_backends[stack.account_id]["aws"]
    keys = [f"{prefix}{index:05d}" for index in range(count)]
    for key in keys:
        backend.put_object(bucket, key, b"x")
    return keys


def _children(result: dict[str, Any]) -> list[Any]:
    assert result["status"] == "SUCCEEDED", result
    children: list[Any] = json.loads(result["output"])["children"]
    return children


@contextmanager
def _role_without(stack: OfflineStack, action: str) -> Iterator[None]:
    """The workflow's role with every statement granting `action` removed; restored afterwards."""
    iam = stack.client("iam")
    role = stack.physical_id("WorkflowRole")
    saved = {}
    for name in iam.list_role_policies(RoleName=role)["PolicyNames"]:
        document = policy_document(iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"])
        kept = [s for s in document["Statement"] if action not in json.dumps(s.get("Action"))]
        if len(kept) != len(document["Statement"]):
            saved[name] = document
            if kept:
                iam.put_role_policy(
                    RoleName=role, PolicyName=name, PolicyDocument=json.dumps(document | {"Statement": kept})
                )
            else:
                iam.delete_role_policy(RoleName=role, PolicyName=name)
    assert saved, f"the workflow's role grants no {action}"
    try:
        yield
    finally:
        for name, document in saved.items():
            iam.put_role_policy(RoleName=role, PolicyName=name, PolicyDocument=json.dumps(document))


# ---------------------------------------------------------------------------------- on the offline stack
def test_the_reader_iterates_every_object_past_the_first_listing_page(stack: OfflineStack, unique: str) -> None:
    # Given 1,050 objects under a prefix: more than one ListObjectsV2 page (1,000 keys)
    keys = _put_objects(stack, f"paged-{unique}/", 1_050)

    # When the Distributed Map maps over the prefix
    children = _children(stack.run_execution({"action": "list", "prefix": f"paged-{unique}/"}, timeout=240))

    # Then every object was one child's input, once, in key order
    assert [child["Key"] for child in children] == keys


def test_each_item_has_the_shape_aws_documents(stack: OfflineStack, unique: str) -> None:
    # Given two objects listed by S3
    s3 = stack.client("s3")
    bucket = stack.outputs["DataBucketName"]
    for key in ("a", "b"):
        s3.put_object(Bucket=bucket, Key=f"shape-{unique}/{key}", Body=b"hello")
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=f"shape-{unique}/")["Contents"]

    children = _children(stack.run_execution({"action": "list", "prefix": f"shape-{unique}/"}))

    # Then each child got Etag (quoted, as S3 lists it), Key, LastModified in epoch seconds, Size, StorageClass
    assert [set(child) for child in children] == [{"Etag", "Key", "LastModified", "Size", "StorageClass"}] * 2
    for child, item in zip(children, listed, strict=True):
        assert child["Etag"] == item["ETag"] and child["Etag"].startswith('"')
        assert (child["Key"], child["Size"], child["StorageClass"]) == (item["Key"], 5, "STANDARD")
        assert child["LastModified"] == pytest.approx(item["LastModified"].timestamp(), abs=1)


def test_an_empty_prefix_runs_no_child_and_succeeds(stack: OfflineStack, unique: str) -> None:
    result = stack.run_execution({"action": "list", "prefix": f"nothing-here-{unique}/"})

    assert _children(result) == []
    events = [e["type"] for e in stack.execution_history(result["executionArn"])]
    assert "MapRunStarted" in events and "MapRunSucceeded" in events


def test_items_are_batched_by_count_with_the_evaluated_batch_input(stack: OfflineStack, unique: str) -> None:
    keys = _put_objects(stack, f"count-{unique}/", 30)

    result = stack.run_execution(BATCHED | {"prefix": f"count-{unique}/", "maxItems": 7, "maxBytes": 262_144})

    children = _children(result)
    assert [len(child["Items"]) for child in children] == [7, 7, 7, 7, 2]
    assert [item["Key"] for child in children for item in child["Items"]] == keys
    assert {json.dumps(child["BatchInput"], sort_keys=True) for child in children} == {
        json.dumps({"label": "L", "failChild": False, "fixed": "as declared"}, sort_keys=True)
    }


def test_items_are_batched_by_bytes_and_no_batch_exceeds_the_limit(stack: OfflineStack, unique: str) -> None:
    keys = _put_objects(stack, f"bytes-{unique}/", 30)
    limit = 1_000

    children = _children(
        stack.run_execution(BATCHED | {"prefix": f"bytes-{unique}/", "maxItems": 1_000, "maxBytes": limit})
    )

    assert len(children) > 1 and [item["Key"] for child in children for item in child["Items"]] == keys
    for child, following in itertools.pairwise(children):
        assert _size(child) <= limit
        # each batch is as full as the limit allows: the next item would not have fitted
        assert _size({**child, "Items": [*child["Items"], following["Items"][0]]}) > limit
    assert _size(children[-1]) <= limit


def _size(batch: dict[str, Any]) -> int:
    return len(json.dumps(batch, separators=(",", ":")).encode())


def test_a_failed_child_fails_the_map_unless_tolerated(stack: OfflineStack, unique: str) -> None:
    _put_objects(stack, f"fail-{unique}/", 12)
    failing = BATCHED | {"prefix": f"fail-{unique}/", "maxItems": 5, "maxBytes": 262_144, "failChild": True}

    # No failure tolerated (AWS's default): the run fails as AWS reports it
    result = stack.run_execution(failing)
    assert (result["status"], result["error"]) == ("FAILED", "States.ExceedToleratedFailureThreshold")
    events = [e["type"] for e in stack.execution_history(result["executionArn"])]
    assert "MapRunFailed" in events

    # Three children fail; three are tolerated: the run succeeds
    assert stack.run_execution(failing | {"toleratedFailures": 3})["status"] == "SUCCEEDED"


def test_the_role_must_be_allowed_to_start_the_child_executions(stack: OfflineStack, unique: str) -> None:
    _put_objects(stack, f"start-{unique}/", 3)

    with _role_without(stack, "states:StartExecution"):
        refused = stack.run_execution({"action": "list", "prefix": f"start-{unique}/"})
    allowed = stack.run_execution({"action": "list", "prefix": f"start-{unique}/"})

    assert (refused["status"], refused["error"]) == ("FAILED", "States.ExceedToleratedFailureThreshold")
    assert (
        "is not authorized to perform: states:StartExecution on resource: " + stack.outputs["WorkflowArn"]
        in (refused["cause"])
    )
    assert len(_children(allowed)) == 3


def test_the_role_must_be_allowed_to_list_the_bucket(stack: OfflineStack, unique: str) -> None:
    _put_objects(stack, f"list-{unique}/", 3)

    with _role_without(stack, "s3:ListBucket"):
        refused = stack.run_execution({"action": "list", "prefix": f"list-{unique}/"})

    assert (refused["status"], refused["error"]) == ("FAILED", "States.ItemReaderFailed")
    assert "AccessDenied" in refused["cause"]


def test_an_item_batcher_aws_would_refuse_is_refused_at_creation(stack: OfflineStack) -> None:
    sfn = stack.client("stepfunctions")
    role = f"arn:aws:iam::{stack.account_id}:role/{stack.physical_id('WorkflowRole')}"

    def definition(mode: str, batcher: dict[str, Any]) -> str:
        processor = {"ProcessorConfig": {"Mode": mode}, "StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}
        return json.dumps(
            {
                "StartAt": "M",
                "States": {"M": {"Type": "Map", "ItemProcessor": processor, "ItemBatcher": batcher, "End": True}},
            }
        )

    for mode, batcher in [("INLINE", {"MaxItemsPerBatch": 2}), ("DISTRIBUTED", {"BatchInput": {"a": 1}})]:
        with pytest.raises(ClientError) as refused:
            sfn.create_state_machine(name="refused-batcher", definition=definition(mode, batcher), roleArn=role)
        assert refused.value.response["Error"]["Code"] == "InvalidDefinition"
    created = sfn.create_state_machine(
        name="accepted-batcher", definition=definition("DISTRIBUTED", {"MaxItemsPerBatch": 2}), roleArn=role
    )
    sfn.delete_state_machine(stateMachineArn=created["stateMachineArn"])


# ---------------------------------------------------------------------------------- the rules, without a stack
def test_batches_close_at_the_item_count_and_keep_order() -> None:
    grouped = batches(list(range(10)), 4, None)
    assert grouped == [{"Items": [0, 1, 2, 3]}, {"Items": [4, 5, 6, 7]}, {"Items": [8, 9]}]
    assert batches([], 4, None, {"x": 1}) == []


def test_batches_count_the_batch_input_in_their_bytes() -> None:
    items = ["x" * 10] * 6  # 12 bytes each as JSON
    without = batches(items, None, 60)
    with_input = batches(items, None, 60, {"label": "abc"})
    assert [len(b["Items"]) for b in without] == [3, 3]
    assert [len(b["Items"]) for b in with_input] == [1] * 6
    assert all(_size(b) <= 60 for b in without + with_input)


def test_batches_never_exceed_256_kib_and_refuse_an_item_that_cannot_fit() -> None:
    big = "y" * 100_000
    assert [len(b["Items"]) for b in batches([big] * 5, None, None)] == [2, 2, 1]
    assert all(_size(b) <= MAX_INPUT_BYTES_PER_BATCH for b in batches([big] * 5, 1_000, 10**9))
    with pytest.raises(ValueError, match="exceeds"):
        batches(["z" * 300_000], None, None)


def test_split_keeps_a_definition_without_batcher_as_it_is() -> None:
    definition = json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}, indent=1)
    assert split_map_runs(definition) == (definition, {})


def test_split_takes_out_nested_batchers_and_records_declared_tolerances() -> None:
    inner = {
        "Type": "Map",
        "ItemProcessor": {
            "ProcessorConfig": {"Mode": "DISTRIBUTED"},
            "StartAt": "P",
            "States": {"P": {"Type": "Pass", "End": True}},
        },
        "ItemBatcher": {"MaxItemsPerBatchPath": "$.n", "BatchInput": {"k.$": "$.k"}},
        "ToleratedFailurePercentage": 5,
        "End": True,
    }
    outer = {"Type": "Map", "ItemProcessor": {"StartAt": "Inner", "States": {"Inner": inner}}, "End": True}
    stripped, settings = split_map_runs(json.dumps({"StartAt": "Outer", "States": {"Outer": outer}}))

    assert "ItemBatcher" not in stripped
    assert settings["Outer"] == MapRunSettings("Outer")
    assert settings["Inner"].batcher is not None and settings["Inner"].batcher.max_items_path == "$.n"
    assert settings["Inner"].batcher.batch_input == {"k.$": "$.k"}
    assert (settings["Inner"].declares_failure_count, settings["Inner"].declares_failure_percentage) == (False, True)


@pytest.mark.parametrize(
    "batcher",
    [
        {"MaxItemsPerBatch": 0},
        {"MaxItemsPerBatch": 2, "MaxItemsPerBatchPath": "$.n"},
        {"MaxInputBytesPerBatch": 262_145},
        {"MaxItemsPerBatchPath": "n"},
        {"MaxItemsPerBatch": 2, "Unknown": 1},
        {"MaxItemsPerBatch": 2, "BatchInput": "text"},
    ],
)
def test_split_refuses_what_aws_refuses(batcher: dict[str, Any]) -> None:
    state = {
        "Type": "Map",
        "ItemProcessor": {
            "ProcessorConfig": {"Mode": "DISTRIBUTED"},
            "StartAt": "P",
            "States": {"P": {"Type": "Pass", "End": True}},
        },
        "ItemBatcher": batcher,
        "End": True,
    }
    with pytest.raises(InvalidItemBatcher):
        split_map_runs(json.dumps({"StartAt": "M", "States": {"M": state}}))


def test_split_refuses_loudly_what_the_harness_would_run_differently() -> None:
    # AWS applies an ItemSelector to each item before batching; moto would apply it to the batch.
    state = {
        "Type": "Map",
        "ItemProcessor": {
            "ProcessorConfig": {"Mode": "DISTRIBUTED"},
            "StartAt": "P",
            "States": {"P": {"Type": "Pass", "End": True}},
        },
        "ItemBatcher": {"MaxItemsPerBatch": 2},
        "ItemSelector": {"key.$": "$$.Map.Item.Value.Key"},
        "End": True,
    }
    with pytest.raises(NotImplementedError, match="not supported by the offline harness"):
        split_map_runs(json.dumps({"StartAt": "M", "States": {"M": state}}))


def test_tolerance_follows_the_declared_thresholds() -> None:
    none, count, percentage = (
        MapRunSettings("M"),
        MapRunSettings("M", None, True),
        MapRunSettings("M", None, False, True),
    )
    both = MapRunSettings("M", None, True, True)
    assert not tolerance_exceeded(none, 0, 10, 0, 0.0)
    assert tolerance_exceeded(none, 1, 10, 0, 0.0)
    assert not tolerance_exceeded(count, 3, 10, 3, 0.0) and tolerance_exceeded(count, 4, 10, 3, 0.0)
    assert not tolerance_exceeded(percentage, 2, 10, 0, 20.0) and tolerance_exceeded(percentage, 3, 10, 0, 20.0)
    assert tolerance_exceeded(both, 3, 10, 5, 20.0) and tolerance_exceeded(both, 6, 100, 5, 20.0)


def test_an_s3_item_is_what_aws_hands_a_child() -> None:
    from datetime import UTC, datetime

    listed = {
        "Key": "k",
        "ETag": '"abc"',
        "Size": 3,
        "StorageClass": "STANDARD",
        "LastModified": datetime(2026, 1, 2, tzinfo=UTC),
    }
    assert s3_item(listed) == {
        "Etag": '"abc"',
        "Key": "k",
        "LastModified": 1767312000,
        "Size": 3,
        "StorageClass": "STANDARD",
    }
    assert json.dumps(s3_item(listed))  # JSON, no datetime
