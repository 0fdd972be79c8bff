"""`python -m local.soak [--schedules N] [--seed S]` (`make soak N=500`): exit 1 on any violation."""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

from local.soak.runner import ROOT, SoakRun, run_soak


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.soak", description=__doc__)
    parser.add_argument("--schedules", type=int, default=300, help="simulated days (default 300)")
    parser.add_argument("--seed", type=int, default=None, help="replay a run (default: a fresh seed, printed)")
    parser.add_argument("--time-scale", type=float, default=0.002, help="Wait/Retry/job scale (default 0.002)")
    parser.add_argument("--log", type=Path, default=ROOT / ".local-state" / "soak-lambdas.log")
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(10**6)
    args.log.parent.mkdir(parents=True, exist_ok=True)
    counts = run_soak(SoakRun(seed=seed, schedules=args.schedules, time_scale=args.time_scale), args.log)
    return 0 if counts.ok else 1


if __name__ == "__main__":
    sys.exit(main())
