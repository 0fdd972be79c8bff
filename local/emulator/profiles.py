"""What Customer Profiles does to a domain's objects besides upserting them: delete and merge.

The rules are pure functions over one domain's objects (``DomainObjects``: object type -> id -> newest
object), so that the emulator's state and a soak's ground truth (``local.soak.world.World``) change by
the same rules and can be compared. Each function checks its whole input before changing anything:
a refused request leaves the objects as they were.

Modelled (Customer Profiles API Reference, ``DeleteProfileObject``, ``DeleteProfile``, ``MergeProfiles``):
- deleting objects of a type removes them; deleting a ``_profile`` also removes every object of the
  domain's other types whose ``ProfileId`` names it (DeleteProfile "Deletes the standard customer
  profile and all data pertaining to the profile"; the emulator reads that as its objects going too);
- merging moves every object of the merged profiles to the main one (``ProfileId`` rewritten), unions
  the standard fields into the main profile (the main profile's value wins) and deletes the merged
  profiles at the end.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from local.emulator.errors import InvalidRequestError, ResourceNotFoundError

PROFILE_TYPE = "_profile"
PROFILE_REFERENCE = "ProfileId"  # the field by which _asset, _order, _case (see synthetic.py) name their profile
MAX_PROFILES_TO_MERGE = 20  # botocore's customer-profiles model: ProfileIdsToBeMerged holds 1-20 ids
# Fields that identify or time an object rather than describe the customer: never taken from a merged profile.
_IDENTITY_FIELDS = frozenset({"id", "lastUpdated", PROFILE_REFERENCE})
# A map of independent custom attributes: merged key by key rather than taken whole.
_ATTRIBUTE_MAP = "Attributes"

DomainObjects = dict[str, dict[str, dict[str, Any]]]


@dataclass
class Effect:
    """What one delete or merge did: ids deleted and ids changed, per object type (each list sorted)."""

    deleted: dict[str, list[str]] = field(default_factory=dict)
    changed: dict[str, list[str]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """The effect as the control endpoints answer it."""
        return {"deleted": self.deleted, "changed": self.changed}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Effect:
        """Read back an effect answered by a control endpoint."""
        return cls(deleted=dict(data.get("deleted", {})), changed=dict(data.get("changed", {})))


def _id_list(ids: Any, what: str) -> list[str]:
    if not isinstance(ids, list) or not all(isinstance(i, str) and i for i in ids):
        raise InvalidRequestError(f"{what} must be a list of non-empty id strings (got {ids!r})")
    if not ids:
        raise InvalidRequestError(f"{what} must name at least one id")
    return list(dict.fromkeys(ids))  # a repeated id is one request for it, as a set


def _missing(store: Mapping[str, Any], ids: Iterable[str]) -> list[str]:
    return [i for i in ids if i not in store]


def _referencing(objects: DomainObjects, profile_ids: set[str]) -> dict[str, list[str]]:
    """Ids of the objects of non-profile types whose ProfileId is one of ``profile_ids``, per type."""
    found: dict[str, list[str]] = {}
    for object_type, store in objects.items():
        if object_type == PROFILE_TYPE:
            continue
        ids = sorted(i for i, obj in store.items() if obj.get(PROFILE_REFERENCE) in profile_ids)
        if ids:
            found[object_type] = ids
    return found


def delete_objects(objects: DomainObjects, object_type: str, ids: Any) -> Effect:
    """Delete objects of ``object_type`` by id (DeleteProfileObject; DeleteProfile for ``_profile``).

    Deleting a profile also deletes the objects of other types that reference it. Every id must exist
    (ResourceNotFound naming the missing ones otherwise, nothing deleted).
    """
    wanted = _id_list(ids, "ids")
    store = objects.get(object_type, {})
    missing = _missing(store, wanted)
    if missing:
        raise ResourceNotFoundError(f"No {object_type} object with id {', '.join(missing)} in this domain")
    effect = Effect(deleted={object_type: sorted(wanted)})
    if object_type == PROFILE_TYPE:
        for other_type, other_ids in _referencing(objects, set(wanted)).items():
            effect.deleted[other_type] = other_ids
    for deleted_type, deleted_ids in effect.deleted.items():
        for object_id in deleted_ids:
            del objects[deleted_type][object_id]
    return effect


def _lacks(value: Any) -> bool:
    return value is None or value == "" or value == {} or value == []


def _union_fields(main: dict[str, Any], others: Sequence[Mapping[str, Any]]) -> None:
    """Fill the main profile's missing standard fields from ``others``, in order (the main one wins)."""
    for other in others:
        for name, value in other.items():
            if name in _IDENTITY_FIELDS or _lacks(value):
                continue
            if name == _ATTRIBUTE_MAP and isinstance(value, dict) and isinstance(main.get(name), dict):
                main[name] = {**value, **main[name]}
            elif _lacks(main.get(name)):
                main[name] = value


def merge_profiles(
    objects: DomainObjects,
    main_profile_id: Any,
    profile_ids_to_merge: Any,
    at_ms: int,
    *,
    moved_objects_updated: bool,
) -> Effect:
    """Merge profiles into ``main_profile_id`` at ``at_ms`` (MergeProfiles); return what changed.

    Every object of another type referencing a merged profile gets ``ProfileId`` = the main profile's
    id; its ``lastUpdated`` becomes ``max(lastUpdated, at_ms)`` only when ``moved_objects_updated``.
    The main profile takes the merged profiles' standard fields it lacks (``Attributes`` key by key)
    and, having changed, gets ``lastUpdated = max(lastUpdated, at_ms)`` (never earlier than it was).
    The merged profiles are deleted. Refused, with nothing changed: a main profile that does not
    exist, merging a profile into itself, an empty or over-long list, merged ids that do not exist.
    """
    if not isinstance(main_profile_id, str) or not main_profile_id:
        raise InvalidRequestError(f"mainProfileId must be a non-empty profile id (got {main_profile_id!r})")
    merged_ids = _id_list(profile_ids_to_merge, "profileIdsToBeMerged")
    if len(merged_ids) > MAX_PROFILES_TO_MERGE:
        raise InvalidRequestError(
            f"profileIdsToBeMerged holds {len(merged_ids)} ids; MergeProfiles takes at most {MAX_PROFILES_TO_MERGE}"
        )
    if main_profile_id in merged_ids:
        raise InvalidRequestError(f"A profile cannot be merged into itself ({main_profile_id} is in both)")
    profiles = objects.get(PROFILE_TYPE, {})
    if main_profile_id not in profiles:
        raise ResourceNotFoundError(f"No _profile with id {main_profile_id} (mainProfileId) in this domain")
    missing = _missing(profiles, merged_ids)
    if missing:
        raise ResourceNotFoundError(f"No _profile with id {', '.join(missing)} (profileIdsToBeMerged) in this domain")

    main = profiles[main_profile_id]
    _union_fields(main, [profiles[i] for i in merged_ids])
    main["lastUpdated"] = max(int(main["lastUpdated"]), at_ms)
    effect = Effect(deleted={PROFILE_TYPE: sorted(merged_ids)}, changed={PROFILE_TYPE: [main_profile_id]})
    for object_type, moved_ids in _referencing(objects, set(merged_ids)).items():
        for object_id in moved_ids:
            moved = objects[object_type][object_id]
            moved[PROFILE_REFERENCE] = main_profile_id
            if moved_objects_updated:
                moved["lastUpdated"] = max(int(moved["lastUpdated"]), at_ms)
        effect.changed[object_type] = moved_ids
    for object_id in merged_ids:
        del profiles[object_id]
    return effect


def live_objects(objects: DomainObjects, object_type: str) -> list[dict[str, Any]]:
    """The objects of a type that exist now, as ``{"id", "lastUpdated", "object"}``, sorted by id."""
    store = objects.get(object_type, {})
    return [{"id": i, "lastUpdated": store[i]["lastUpdated"], "object": store[i]} for i in sorted(store)]
