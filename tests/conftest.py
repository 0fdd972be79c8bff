"""Settings for every test."""

from hypothesis import settings

# Tests assert behaviour, never speed: Hypothesis's per-example deadline (200 ms) is a wall-clock limit,
# which a busy machine breaks (a name property failed at 1.1 s under a load of 13 on 2 CPUs).
settings.register_profile("behaviour", deadline=None)
settings.load_profile("behaviour")
