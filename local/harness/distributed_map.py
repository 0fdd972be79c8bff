"""A Distributed Map on moto 5.2.5's interpreter, run the way AWS runs one.

moto's interpreter runs a Distributed Map's children in-process, but four things differ from AWS,
and each would let a definition pass offline that fails (or silently loses data) on AWS:

- Its ASL grammar has no `ItemBatcher`: a definition with one is refused. `split_map_runs` takes
  each Map's ItemBatcher out of the definition before moto parses it (validated as AWS validates it)
  and `attach_map_runs` hangs it, as a `MapRunSettings`, on the parsed Map's iteration component.
- Its S3 `listObjectsV2` ItemReader makes one ListObjectsV2 call, so only the first 1,000 objects
  would be iterated, raises KeyError on an empty prefix, and hands moto's datetimes.
  `list_all_objects` pages through every object and gives each item in the shape AWS documents
  (`Etag` with its quotes, `Key`, `LastModified` as epoch seconds, `Size`, `StorageClass`).
- It ignores `ToleratedFailureCount` / `ToleratedFailurePercentage`: a failed child just yields
  `null`. `tolerance_exceeded` fails the run with `States.ExceedToleratedFailureThreshold`.
- It never checks that the role may start the child executions (`states:StartExecution` on the
  state machine itself, which AWS requires): `moto_patches` asks the harness's IAM before children start.

`moto_patches.MotoPatches` installs the hooks; this module holds what they do.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

# A child execution's input may not exceed 256 KiB; a batch is at most that by default (AWS's limit).
MAX_INPUT_BYTES_PER_BATCH = 262_144
SETTINGS_ATTRIBUTE = "harness_map_run"
"""The attribute of a parsed Map's iteration component that holds its `MapRunSettings`."""

_BATCHER_FIELDS = {
    "MaxItemsPerBatch",
    "MaxItemsPerBatchPath",
    "MaxInputBytesPerBatch",
    "MaxInputBytesPerBatchPath",
    "BatchInput",
}


class InvalidItemBatcher(ValueError):
    """A definition AWS would refuse (SCHEMA_VALIDATION_FAILED) because of a Map's ItemBatcher."""


@dataclass(frozen=True)
class ItemBatcher:
    """One Map state's `ItemBatcher`, as declared (paths are evaluated per run)."""

    max_items: int | None = None
    max_items_path: str | None = None
    max_input_bytes: int | None = None
    max_input_bytes_path: str | None = None
    batch_input: Any = None  # a JSONPath payload template, or None

    @classmethod
    def from_asl(cls, state_name: str, declared: Any) -> ItemBatcher:
        """Validate an ItemBatcher as AWS does (at state machine creation) and keep it."""
        if not isinstance(declared, dict):
            raise InvalidItemBatcher(f"{state_name}: ItemBatcher must be an object")
        unknown = set(declared) - _BATCHER_FIELDS
        if unknown:
            raise InvalidItemBatcher(f"{state_name}: ItemBatcher has unknown fields {sorted(unknown)}")
        for plain in ("MaxItemsPerBatch", "MaxInputBytesPerBatch"):
            if plain in declared and f"{plain}Path" in declared:
                raise InvalidItemBatcher(f"{state_name}: ItemBatcher has both {plain} and {plain}Path")
        if not {"MaxItemsPerBatch", "MaxItemsPerBatchPath", "MaxInputBytesPerBatch", "MaxInputBytesPerBatchPath"} & set(
            declared
        ):
            raise InvalidItemBatcher(f"{state_name}: ItemBatcher needs a maximum number of items or of input bytes")
        max_items = declared.get("MaxItemsPerBatch")
        max_bytes = declared.get("MaxInputBytesPerBatch")
        if max_items is not None:
            _positive(state_name, "MaxItemsPerBatch", max_items)
        if max_bytes is not None:
            _positive(state_name, "MaxInputBytesPerBatch", max_bytes, MAX_INPUT_BYTES_PER_BATCH)
        for path_field in ("MaxItemsPerBatchPath", "MaxInputBytesPerBatchPath"):
            path = declared.get(path_field)
            if path is not None and not (isinstance(path, str) and path.startswith("$")):
                raise InvalidItemBatcher(f"{state_name}: {path_field} must be a reference path")
        batch_input = declared.get("BatchInput")
        if batch_input is not None and not isinstance(batch_input, dict):
            raise InvalidItemBatcher(f"{state_name}: BatchInput must be an object (a payload template)")
        return cls(
            max_items=max_items,
            max_items_path=declared.get("MaxItemsPerBatchPath"),
            max_input_bytes=max_bytes,
            max_input_bytes_path=declared.get("MaxInputBytesPerBatchPath"),
            batch_input=batch_input,
        )


def _positive(state_name: str, name: str, value: Any, maximum: int | None = None) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise InvalidItemBatcher(f"{state_name}: {name} must be a positive integer, not {value!r}")
    if maximum is not None and value > maximum:
        raise InvalidItemBatcher(f"{state_name}: {name} must be at most {maximum}, not {value}")
    return value


@dataclass(frozen=True)
class MapRunSettings:
    """What the harness needs to run one Map state as AWS does: its batcher and declared tolerances."""

    state_name: str
    batcher: ItemBatcher | None = None
    declares_failure_count: bool = False
    declares_failure_percentage: bool = False


def _iterate_states(states: Any) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every state of a `States` object, nested ones (Map processors, Parallel branches) included."""
    if not isinstance(states, dict):
        return
    for name, state in states.items():
        if not isinstance(state, dict):
            continue
        yield name, state
        for processor in (state.get("ItemProcessor"), state.get("Iterator")):
            if isinstance(processor, dict):
                yield from _iterate_states(processor.get("States"))
        for branch in state.get("Branches") or []:
            if isinstance(branch, dict):
                yield from _iterate_states(branch.get("States"))


def split_map_runs(definition: str) -> tuple[str, dict[str, MapRunSettings]]:
    """The definition without its ItemBatchers (what moto's grammar accepts) and each Map's settings.

    A definition that is not a JSON object is returned as it is (moto reports what is wrong with it);
    one without any ItemBatcher is returned unchanged. Raises `InvalidItemBatcher` for an ItemBatcher
    AWS would refuse, or one on a Map that is not DISTRIBUTED.
    """
    try:
        document = json.loads(definition)
    except ValueError:
        return definition, {}
    if not isinstance(document, dict):
        return definition, {}
    settings: dict[str, MapRunSettings] = {}
    stripped = False
    for name, state in _iterate_states(document.get("States")):
        if state.get("Type") != "Map":
            continue
        if name in settings:
            raise InvalidItemBatcher(f"state name {name!r} is used twice: state names must be unique")
        batcher = None
        if "ItemBatcher" in state:
            processor = state.get("ItemProcessor") or state.get("Iterator") or {}
            mode = ((processor.get("ProcessorConfig") or {}) if isinstance(processor, dict) else {}).get("Mode")
            if mode != "DISTRIBUTED":
                raise InvalidItemBatcher(
                    f"{name}: ItemBatcher is only allowed in a Map whose ProcessorConfig is DISTRIBUTED"
                )
            if {"ItemSelector", "Parameters"} & set(state):
                # AWS selects each item, then batches; moto would apply the selector to the whole batch.
                raise NotImplementedError(
                    f"{name}: ItemBatcher together with ItemSelector/Parameters is not supported by the offline harness"
                )
            batcher = ItemBatcher.from_asl(name, state.pop("ItemBatcher"))
            stripped = True
        settings[name] = MapRunSettings(
            state_name=name,
            batcher=batcher,
            declares_failure_count=bool({"ToleratedFailureCount", "ToleratedFailureCountPath"} & set(state)),
            declares_failure_percentage=bool(
                {"ToleratedFailurePercentage", "ToleratedFailurePercentagePath"} & set(state)
            ),
        )
    return (json.dumps(document) if stripped else definition), settings


def attach_map_runs(program: Any, settings: dict[str, MapRunSettings], state_map_type: type) -> int:
    """Set each parsed Map state's `MapRunSettings` on its iteration component; return how many.

    The parsed program is walked through its components' attributes (moto's component tree), so a
    Map nested in another Map's processor or in a Parallel branch is found too.
    """
    attached = 0
    seen: set[int] = set()
    pending: list[Any] = [program]
    while pending:
        node = pending.pop()
        if id(node) in seen or node is None or isinstance(node, str | int | float | bool):
            continue
        seen.add(id(node))
        if isinstance(node, dict):
            pending.extend(node.values())
            continue
        if isinstance(node, list | tuple | set):
            pending.extend(node)
            continue
        if not hasattr(node, "__dict__") or not type(node).__module__.startswith("moto.stepfunctions"):
            continue
        if isinstance(node, state_map_type):
            state: Any = node
            if state.name in settings:
                setattr(state.iteration_component, SETTINGS_ATTRIBUTE, settings[state.name])
                attached += 1
        pending.extend(vars(node).values())
    return attached


# ---------------------------------------------------------------------------------- the S3 item reader
def s3_item(listed: dict[str, Any]) -> dict[str, Any]:
    """One object of a ListObjectsV2 page as the Distributed Map hands it to a child (AWS's documented shape)."""
    modified = listed.get("LastModified")
    seconds: int | float | None = None
    if isinstance(modified, datetime):
        timestamp = modified.timestamp()
        seconds = int(timestamp) if timestamp.is_integer() else timestamp
    return {
        "Etag": listed.get("ETag"),
        "Key": listed["Key"],
        "LastModified": seconds,
        "Size": listed.get("Size"),
        "StorageClass": listed.get("StorageClass", "STANDARD"),
    }


def list_all_objects(s3_client: Any, parameters: dict[str, Any]) -> list[dict[str, Any]]:
    """Every object under the ItemReader's Bucket/Prefix, page after page (none: an empty list)."""
    items: list[dict[str, Any]] = []
    request = dict(parameters)
    while True:
        page = s3_client.list_objects_v2(**request)
        items.extend(s3_item(listed) for listed in page.get("Contents", []))
        token = page.get("NextContinuationToken")
        if not page.get("IsTruncated") or not token:
            return items
        request["ContinuationToken"] = token


# ---------------------------------------------------------------------------------- batching
def batches(
    items: list[Any], max_items: int | None, max_input_bytes: int | None, batch_input: Any = None
) -> list[dict[str, Any]]:
    """Group items, in order, into child inputs `{"Items": [...], "BatchInput": ...}`.

    A batch closes when one more item would exceed `max_items`, or make the child's input (its JSON,
    `BatchInput` included) larger than `max_input_bytes` (at most 256 KiB, the default). An item that
    alone does not fit raises `ValueError`.
    """
    limit = min(max_input_bytes or MAX_INPUT_BYTES_PER_BATCH, MAX_INPUT_BYTES_PER_BATCH)
    empty: dict[str, Any] = {"Items": []} if batch_input is None else {"Items": [], "BatchInput": batch_input}
    base = len(_json_bytes(empty))
    grouped: list[dict[str, Any]] = []
    current: list[Any] = []
    size = base
    for index, item in enumerate(items):
        item_size = len(_json_bytes(item))
        if base + item_size > limit:
            raise ValueError(
                f"item {index} is {item_size} bytes: with the batch's own fields it exceeds the "
                f"{limit} bytes a batch may hold (MaxInputBytesPerBatch)"
            )
        grown = size + item_size + (1 if current else 0)
        if current and ((max_items is not None and len(current) >= max_items) or grown > limit):
            grouped.append(_batch(current, batch_input))
            current, grown = [], base + item_size
        current.append(item)
        size = grown
    if current:
        grouped.append(_batch(current, batch_input))
    return grouped


def _batch(items: list[Any], batch_input: Any) -> dict[str, Any]:
    return {"Items": items} if batch_input is None else {"Items": items, "BatchInput": batch_input}


def _json_bytes(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def positive_int(name: str, value: Any) -> int:
    """A batcher limit read from the state input: it must be a positive integer (AWS fails the run otherwise)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or int(value) != value or value < 1:
        raise ValueError(f"{name} must select a positive integer, not {value!r}")
    return int(value)


# ---------------------------------------------------------------------------------- tolerance
def tolerance_exceeded(settings: MapRunSettings | None, failed: int, total: int, count: int, percentage: float) -> bool:
    """Whether `failed` of `total` children break the Map's tolerance, as AWS judges it.

    Neither field declared: no failure is tolerated. One declared: that threshold alone. Both: the
    run fails when either is exceeded.
    """
    if failed == 0:
        return False
    by_count = settings is not None and settings.declares_failure_count
    by_percentage = settings is not None and settings.declares_failure_percentage
    if not by_count and not by_percentage:
        return True
    over_count = by_count and failed > count
    over_percentage = by_percentage and total > 0 and failed * 100.0 / total > percentage
    return over_count or over_percentage


ChildExecutionGate = Callable[[str, str], None]
"""Called with (role ARN, state machine ARN) before a Map run starts children; raises a
`local.iam.errors.ServiceError` when the role may not start executions of the state machine."""

__all__ = [
    "MAX_INPUT_BYTES_PER_BATCH",
    "SETTINGS_ATTRIBUTE",
    "ChildExecutionGate",
    "InvalidItemBatcher",
    "ItemBatcher",
    "MapRunSettings",
    "attach_map_runs",
    "batches",
    "list_all_objects",
    "positive_int",
    "s3_item",
    "split_map_runs",
    "tolerance_exceeded",
]
