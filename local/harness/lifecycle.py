"""S3 lifecycle offline: the rules a template declares reach moto, and expiry happens when asked.

moto's CloudFormation ignores a bucket's `LifecycleConfiguration`, and moto never runs lifecycle
rules. So:

- `lifecycle_rules_of(properties)` turns the template's rules into PutBucketLifecycleConfiguration's
  shape; the moto patch that creates buckets from a template puts them (`moto_patches`);
- `apply_lifecycle(s3, bucket, now)` does what S3's lifecycle would have done by `now`, from the
  configuration S3 answers (GetBucketLifecycleConfiguration), with each rule's real filter: an
  object (a current version) whose key the filter matches expires at creation + `Expiration.Days`,
  rounded up to the next 00:00 UTC (a versioned bucket gets a delete marker, as on S3); a
  noncurrent version is deleted `NoncurrentDays` after it became noncurrent, rounded the same way.

Modelled: Prefix and tag-less `Filter`/`And` prefixes, `Expiration.Days`,
`NoncurrentVersionExpiration.NoncurrentDays`, disabled rules. Not modelled: `Expiration.Date`,
object size and tag filters, transitions, `ExpiredObjectDeleteMarker`, aborting multipart uploads.
Timing: S3 deletes asynchronously, at some moment after the expiry moment; offline the deletion
happens at the first moment allowed (the `now` of the call that sees it due), which is the earliest,
hence the strictest, case for anything that must be gone before the files are.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any


def lifecycle_rules_of(properties: dict[str, Any]) -> list[dict[str, Any]]:
    """A bucket's `LifecycleConfiguration.Rules` (CloudFormation) as the S3 API's rules."""
    rules = []
    for rule in (properties.get("LifecycleConfiguration") or {}).get("Rules") or []:
        converted: dict[str, Any] = {"Status": rule.get("Status", "Enabled")}
        if rule.get("Id"):
            converted["ID"] = rule["Id"]
        prefix = rule.get("Prefix")
        if prefix is None:
            prefix = (rule.get("Filter") or {}).get("Prefix", "")  # not a CloudFormation field; tolerated
        converted["Filter"] = {"Prefix": prefix}
        if rule.get("ExpirationInDays") is not None:
            converted["Expiration"] = {"Days": int(rule["ExpirationInDays"])}
        noncurrent = rule.get("NoncurrentVersionExpiration") or rule.get("NoncurrentVersionExpirationInDays")
        if isinstance(noncurrent, dict):
            converted["NoncurrentVersionExpiration"] = {"NoncurrentDays": int(noncurrent["NoncurrentDays"])}
        elif noncurrent is not None:
            converted["NoncurrentVersionExpiration"] = {"NoncurrentDays": int(noncurrent)}
        rules.append(converted)
    return rules


def expiry_moment(since: datetime, days: int) -> datetime:
    """`since` + `days`, rounded up to the next 00:00 UTC: the first moment S3 may delete the object."""
    due = since.astimezone(UTC) + timedelta(days=days)
    midnight = datetime.combine(due.date(), time(), tzinfo=UTC)
    return midnight if due == midnight else midnight + timedelta(days=1)


def rule_prefix(rule: dict[str, Any]) -> str:
    """The key prefix a rule applies to ('' = the whole bucket)."""
    if "Prefix" in rule:  # the legacy top-level form
        return str(rule["Prefix"] or "")
    selector = rule.get("Filter") or {}
    if "And" in selector:
        return str(selector["And"].get("Prefix", ""))
    return str(selector.get("Prefix", ""))


@dataclass
class LifecycleRun:
    """What one `apply_lifecycle` deleted: expired keys (current versions) and noncurrent versions."""

    expired: list[str] = field(default_factory=list)
    noncurrent_deleted: list[tuple[str, str]] = field(default_factory=list)


def apply_lifecycle(s3: Any, bucket: str, now: datetime) -> LifecycleRun:
    """Expire, as of `now`, what the bucket's lifecycle rules have made due (read from S3 itself)."""
    run = LifecycleRun()
    try:
        rules = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    except s3.exceptions.ClientError as error:
        if error.response.get("Error", {}).get("Code") == "NoSuchLifecycleConfiguration":
            return run
        raise
    for rule in rules:
        if rule.get("Status") != "Enabled":
            continue
        prefix = rule_prefix(rule)
        days = (rule.get("Expiration") or {}).get("Days")
        noncurrent_days = (rule.get("NoncurrentVersionExpiration") or {}).get("NoncurrentDays")
        for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=prefix):
            versions = sorted(page.get("Versions", []), key=lambda v: (v["Key"], v["LastModified"]))
            newer: dict[str, datetime] = {}  # key -> when the next newer version (or marker) was made
            for marker in page.get("DeleteMarkers", []):
                if marker.get("IsLatest"):
                    newer[marker["Key"]] = marker["LastModified"]
            for version in reversed(versions):
                key, made = version["Key"], version["LastModified"]
                if version.get("IsLatest"):
                    if days is not None and now >= expiry_moment(made, int(days)):
                        s3.delete_object(Bucket=bucket, Key=key)  # a delete marker when versioned
                        run.expired.append(key)
                elif (
                    noncurrent_days is not None
                    and key in newer
                    and now >= expiry_moment(newer[key], int(noncurrent_days))
                ):
                    s3.delete_object(Bucket=bucket, Key=key, VersionId=version["VersionId"])
                    run.noncurrent_deleted.append((key, version["VersionId"]))
                newer[key] = made
    return run
