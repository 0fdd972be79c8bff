"""The randomized soak: the real template, ASL and handlers on the offline stack over many simulated
days, with the faults AWS can produce, checked after every schedule against the pipeline's promises.

    python -m local.soak --schedules 300 --seed 7

Every random choice comes from one seeded generator, so a failing run is replayed with its seed.
`world` keeps the ground truth (every object version seeded), `day` draws what happens on a
simulated day (changes, deliveries, faults), `checks` reads what the pipeline left and counts
violations of each promise.
"""

from local.soak.checks import Counts, Invariants
from local.soak.runner import SoakRun, run_soak

__all__ = ["Counts", "Invariants", "SoakRun", "run_soak"]
