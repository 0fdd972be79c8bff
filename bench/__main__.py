"""`make bench`: polling cost against a fixed 60-second poll, and indexing against a bare listing.

Figures are ratios measured in one run, so a shared, noisy machine still gives comparable numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from datetime import UTC, datetime, timedelta

from cpexport.polling import PastJob, predict, schedule

EVENTS_PER_POLL = 9  # Wait 2, Task 5, Choice 2 (history events of one poll)
HISTORY_LIMIT = 25_000


def polling_cost() -> None:
    """Polls and history events of the schedule (without and with history) versus a fixed 60 s poll."""
    print("Polling cost vs a fixed 60 s poll (computed; the executed figures come with issue 9's bench)")
    print(f"  {'job duration':>12} {'polls':>6} {'learned':>8} {'fixed':>6} {'events x20 types':>17} {'of limit':>9}")
    for label, seconds in (("2 min", 120), ("15 min", 900), ("1 h", 3600), ("6 h", 21_600), ("24 h", 86_400)):
        polls = len(schedule(seconds, None))
        learned = len(schedule(seconds, predict([PastJob(seconds, 86_400)], 86_400)))
        fixed = -(-seconds // 60)
        events = polls * EVENTS_PER_POLL * 20
        print(f"  {label:>12} {polls:>6} {learned:>8} {fixed:>6} {events:>17,} {events / HISTORY_LIMIT:>8.0%}")


def indexing(files: int) -> None:
    """Index (list + count records) of `files` exported files versus only listing them, on moto in-process."""
    import boto3
    from cpexport.clients.s3 import ExportBucket
    from moto import mock_aws

    os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1")
    with mock_aws():
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket="bench")
        line = json.dumps({"id": "x" * 32, "lastUpdated": 0, "FirstName": "Ada"}) + "\n"
        start = time.perf_counter()
        for n in range(files):
            s3.put_object(Bucket="bench", Key=f"p/{n:07d}", Body=(line * 100).encode())
        print(
            f"\nIndexing {files:,} files of 100 records (moto in-process; seeding took {time.perf_counter() - start:.1f}s)"
        )
        bucket = ExportBucket("bench", api=s3)
        start = time.perf_counter()
        listed = list(bucket.list_files("p/"))
        list_seconds = time.perf_counter() - start
        start = time.perf_counter()
        records = sum(bucket.count_lines(f.key) for f in bucket.list_files("p/"))
        index_seconds = time.perf_counter() - start
        assert len(listed) == files and records == files * 100
        print(
            f"  listing only: {list_seconds:.2f}s   index with record counts: {index_seconds:.2f}s   "
            f"ratio {index_seconds / list_seconds:.1f}x  ({files / index_seconds:,.0f} files/s)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--files", type=int, default=2000, help="files for the indexing benchmark")
    args = parser.parse_args()
    started = datetime.now(UTC)
    polling_cost()
    indexing(args.files)
    print(f"\nbench finished in {(datetime.now(UTC) - started) / timedelta(seconds=1):.1f}s")


if __name__ == "__main__":
    main()
