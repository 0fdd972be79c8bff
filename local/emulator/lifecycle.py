"""Plausible deletions and merges for a soak or demo day: what a Customer Profiles domain loses.

``plan_lifecycle`` looks at a domain's live objects and returns a ``LifecyclePlan`` (a few assets and
orders deleted, now and then a profile deleted, and, when asked, the weekly identity-resolution
auto-merge of duplicate profiles); ``LifecyclePlan.apply`` sends it to the emulator through
``EmulatorControl``. ``local.soak.world.World.lifecycle`` applies the same plan to its ground truth.

Identity resolution here is a stand-in for AWS's rules (not documented in detail): profiles sharing a
non-empty ``EmailAddress`` or ``PhoneNumber`` are one person; the most recently updated of them is the
main profile (the RECENCY conflict resolution).
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from local.emulator.profiles import MAX_PROFILES_TO_MERGE, PROFILE_REFERENCE, PROFILE_TYPE

MATCH_FIELDS = ("EmailAddress", "PhoneNumber")  # the fields the stand-in identity resolution matches on
DELETABLE_TYPES = ("_order", "_asset")  # object types whose objects the plan deletes one by one


class LifecycleControl(Protocol):
    """What applying a plan needs of ``EmulatorControl``."""

    def delete(self, domain: str, object_type: str, ids: Iterable[str]) -> dict[str, Any]: ...

    def merge(
        self, domain: str, main_profile_id: str, profile_ids_to_merge: Iterable[str], at_ms: int | None = None
    ) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Deletion:
    """Delete these objects of one type (for ``_profile``: with the objects that reference them)."""

    object_type: str
    ids: tuple[str, ...]


@dataclass(frozen=True)
class Merge:
    """Merge these profiles into the main one."""

    main_profile_id: str
    profile_ids_to_merge: tuple[str, ...]


@dataclass
class LifecyclePlan:
    """Deletions, then merges, all at ``at_ms``; disjoint, so every step finds what it names."""

    at_ms: int
    deletions: list[Deletion] = field(default_factory=list)
    merges: list[Merge] = field(default_factory=list)

    def apply(self, control: LifecycleControl, domain: str) -> list[dict[str, Any]]:
        """Send every step to the emulator, in order; return its answers (what each deleted and changed)."""
        answers = [control.delete(domain, d.object_type, d.ids) for d in self.deletions]
        answers += [control.merge(domain, m.main_profile_id, m.profile_ids_to_merge, self.at_ms) for m in self.merges]
        return answers


def duplicate_groups(profiles: Iterable[Mapping[str, Any]]) -> list[list[str]]:
    """Ids of the profiles that are one person (sharing an e-mail or a phone), groups of two or more, sorted."""
    parent: dict[str, str] = {}

    def root(profile_id: str) -> str:
        while parent[profile_id] != profile_id:
            parent[profile_id] = parent[parent[profile_id]]
            profile_id = parent[profile_id]
        return profile_id

    first_with: dict[tuple[str, Any], str] = {}
    for profile in sorted(profiles, key=lambda p: str(p["id"])):
        profile_id = str(profile["id"])
        parent.setdefault(profile_id, profile_id)
        for name in MATCH_FIELDS:
            value = profile.get(name)
            if not value:
                continue
            other = first_with.setdefault((name, value), profile_id)
            parent[root(profile_id)] = root(other)
    groups: dict[str, list[str]] = {}
    for profile_id in parent:
        groups.setdefault(root(profile_id), []).append(profile_id)
    return sorted(sorted(g) for g in groups.values() if len(g) > 1)


def auto_merges(profiles: Sequence[Mapping[str, Any]]) -> list[Merge]:
    """The merges a weekly auto-merge makes: each duplicate group into its most recently updated profile."""
    by_id = {str(p["id"]): p for p in profiles}
    merges = []
    for group in duplicate_groups(profiles):
        # Most recent first; the id breaks ties so the plan does not depend on dict order.
        ordered = sorted(group, key=lambda i: (-int(by_id[i]["lastUpdated"]), i))
        main, rest = ordered[0], ordered[1:]
        # MergeProfiles takes at most 20 ids a call: a larger group is several merges into the same main profile.
        for i in range(0, len(rest), MAX_PROFILES_TO_MERGE):
            merges.append(Merge(main, tuple(rest[i : i + MAX_PROFILES_TO_MERGE])))
    return merges


def plan_lifecycle(
    rng: random.Random,
    live: Mapping[str, Iterable[Mapping[str, Any]]],
    at_ms: int,
    *,
    auto_merge: bool = False,
    max_deletions_per_type: int = 3,
    profile_deletion_probability: float = 0.3,
) -> LifecyclePlan:
    """Plan one moment's deletions and (with ``auto_merge``) the auto-merge of duplicate profiles.

    ``live`` maps object types to their live objects. Up to ``max_deletions_per_type`` objects of each
    of ``_order`` and ``_asset`` are deleted; with ``profile_deletion_probability`` one profile (and so
    its objects). Profiles deleted are not merged, and objects deleted one by one are not those of a
    deleted profile, so every step of the plan finds what it names.
    """
    plan = LifecyclePlan(at_ms=at_ms)
    objects = {t: sorted(live.get(t, ()), key=lambda o: str(o["id"])) for t in live}
    profiles = objects.get(PROFILE_TYPE, [])
    gone_profiles: set[str] = set()
    if profiles and rng.random() < profile_deletion_probability:
        gone_profiles.add(str(rng.choice(profiles)["id"]))
    for object_type in DELETABLE_TYPES:
        candidates = [
            str(o["id"]) for o in objects.get(object_type, []) if o.get(PROFILE_REFERENCE) not in gone_profiles
        ]
        count = rng.randint(0, min(max_deletions_per_type, len(candidates)))
        if count:
            plan.deletions.append(Deletion(object_type, tuple(sorted(rng.sample(candidates, count)))))
    if gone_profiles:
        plan.deletions.append(Deletion(PROFILE_TYPE, tuple(sorted(gone_profiles))))
    if auto_merge:
        plan.merges = auto_merges([p for p in profiles if str(p["id"]) not in gone_profiles])
    return plan
