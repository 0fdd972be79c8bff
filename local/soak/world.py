"""The ground truth of a soak: every object version seeded into the emulator, per object type."""

from __future__ import annotations

import copy
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from local.emulator.lifecycle import LifecyclePlan, plan_lifecycle
from local.emulator.profiles import PROFILE_TYPE, Effect, delete_objects, live_objects, merge_profiles
from local.emulator.synthetic import generate, mutate

DAY_MS = 86_400_000


def epoch_ms(moment: datetime) -> int:
    """Epoch milliseconds of a datetime (the emulator's lastUpdated)."""
    return int(moment.timestamp() * 1000)


class WorldDisagreement(RuntimeError):
    """The emulator did something else to the domain than the World's ground truth expected."""


@dataclass
class World:
    """Objects of one domain, changing day by day; the emulator holds their newest versions.

    Deleted and merged-away objects leave ``objects``: it holds what the domain holds now.
    """

    domain: str
    object_types: tuple[str, ...]
    objects: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)  # type -> id -> newest
    # Off by default so that a soak without lifecycle changes draws exactly the data it always did.
    duplicate_profile_rate: float = 0.0  # share of new profiles that duplicate a known person (for auto-merges)
    link_to_profiles: bool = False  # new assets, orders and cases reference live profiles (so merges move them)

    def __post_init__(self) -> None:
        for object_type in self.object_types:
            self.objects.setdefault(object_type, {})

    def change(self, control: Any, day_start: datetime, rng: random.Random) -> int:
        """New objects and updates during one day (some several times, some in its last half hour)."""
        begin, changed = epoch_ms(day_start), 0
        for object_type in self.object_types:
            store = self.objects[object_type]
            profiles = self.objects.get(PROFILE_TYPE, {})
            linked = sorted(profiles) if self.link_to_profiles and object_type != PROFILE_TYPE else []
            fresh = generate(
                object_type,
                rng.randrange(5, 40),
                begin,
                begin + DAY_MS,
                rng.randrange(10**9),
                profile_ids=linked,
                duplicate_rate=self.duplicate_profile_rate,
                duplicates_of=list(profiles.values()),
            )
            batch = list(fresh)
            if store:
                updates = mutate(
                    list(store.values()),
                    rng.randrange(0, 15),
                    begin,
                    rng.randrange(10**9),
                    spread_ms=DAY_MS,
                )
                again = mutate(updates, len(updates) // 3, begin + DAY_MS - 20 * 60_000, rng.randrange(10**9))
                batch += updates + again  # `again` after `updates`: the newest version of each id wins
            for obj in batch:
                newest = store.get(obj["id"])
                if newest is None or obj["lastUpdated"] >= newest["lastUpdated"]:
                    store[obj["id"]] = obj
            control.seed(self.domain, object_type, [store[obj["id"]] for obj in batch])
            changed += len(batch)
        return changed

    def current(self, object_type: str) -> list[dict[str, Any]]:
        """The newest version of every object of a type."""
        return list(self.objects[object_type].values())

    def live(self, object_type: str) -> list[dict[str, Any]]:
        """The objects of a type that exist now, in the shape of ``EmulatorControl.objects`` (copies, to compare)."""
        return copy.deepcopy(live_objects(self.objects, object_type))

    def lifecycle(self, control: Any, at: datetime, rng: random.Random, *, auto_merge: bool = False) -> LifecyclePlan:
        """Delete a few objects (and maybe a profile) at ``at``, and with ``auto_merge`` merge duplicate profiles.

        The plan is drawn from the World's live objects and applied to the emulator and to the World
        alike (``apply_lifecycle``); it is returned so a caller can report it.
        """
        live = {object_type: self.current(object_type) for object_type in self.object_types}
        plan = plan_lifecycle(rng, live, epoch_ms(at), auto_merge=auto_merge)
        self.apply_lifecycle(control, plan)
        return plan

    def apply_lifecycle(self, control: Any, plan: LifecyclePlan) -> None:
        """Apply ``plan`` to the emulator, then by the same rules to the World; raise if they did different things.

        A merge moves objects with or without a new ``lastUpdated`` as the emulator's
        ``merge_updates_last_updated`` knob says at the time, so both agree under any drawn config.
        """
        moved_objects_updated = bool(control.config()["merge_updates_last_updated"])
        for deletion in plan.deletions:
            answer = control.delete(self.domain, deletion.object_type, deletion.ids)
            expected = delete_objects(self.objects, deletion.object_type, list(deletion.ids))
            self._agree(f"delete {deletion.object_type} {list(deletion.ids)}", expected, answer)
        for merge in plan.merges:
            merged = list(merge.profile_ids_to_merge)
            answer = control.merge(self.domain, merge.main_profile_id, merged, plan.at_ms)
            expected = merge_profiles(
                self.objects, merge.main_profile_id, merged, plan.at_ms, moved_objects_updated=moved_objects_updated
            )
            self._agree(f"merge {merged} into {merge.main_profile_id}", expected, answer)

    @staticmethod
    def _agree(step: str, expected: Effect, answer: dict[str, Any]) -> None:
        # The emulator answers with every type of the domain: a type the World does not know shows up here too.
        if Effect.from_dict(answer) != expected:
            raise WorldDisagreement(f"{step}: the World expected {expected.as_dict()}, the emulator did {answer}")


def day_start(day0: datetime, day: int) -> datetime:
    return day0 + timedelta(days=day)
