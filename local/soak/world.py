"""The ground truth of a soak: every object version seeded into the emulator, per object type."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from local.emulator.synthetic import generate, mutate

DAY_MS = 86_400_000


def epoch_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


@dataclass
class World:
    """Objects of one domain, changing day by day; the emulator holds their newest versions."""

    domain: str
    object_types: tuple[str, ...]
    objects: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)  # type -> id -> newest

    def __post_init__(self) -> None:
        for object_type in self.object_types:
            self.objects.setdefault(object_type, {})

    def change(self, control: Any, day_start: datetime, rng: random.Random) -> int:
        """New objects and updates during one day (some several times, some in its last half hour)."""
        begin, changed = epoch_ms(day_start), 0
        for object_type in self.object_types:
            store = self.objects[object_type]
            fresh = generate(object_type, rng.randrange(5, 40), begin, begin + DAY_MS, rng.randrange(10**9))
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


def day_start(day0: datetime, day: int) -> datetime:
    return day0 + timedelta(days=day)
