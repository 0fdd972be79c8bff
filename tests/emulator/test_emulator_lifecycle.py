"""Objects that go away: DeleteProfileObject, DeleteProfile and MergeProfiles, and what later exports show."""

from __future__ import annotations

import json
from typing import Any

import pytest

from local.emulator import EmulatorControl, EmulatorControlError
from tests.emulator.emulator_helpers import DAY_MS, DOMAIN, create_export, now_ms, on_demand


def exported(ctl: EmulatorControl, s3: Any, bucket: str, data_integration: str) -> list[dict[str, Any]]:
    """Every record the (finished) jobs of one data integration wrote, read back from S3."""
    records: list[dict[str, Any]] = []
    for job in ctl.wait_idle(timeout=5):
        if job["dataIntegrationName"] != data_integration:
            continue
        assert job["status"] == "COMPLETED", job
        for key in job["files"]:
            body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            records.extend(json.loads(line) for line in body.splitlines())
    return records


def profile(profile_id: str, last_updated: int, **fields: Any) -> dict[str, Any]:
    return {"id": profile_id, "lastUpdated": last_updated, "ProfileId": profile_id, **fields}


def owned(object_id: str, profile_id: str, last_updated: int) -> dict[str, Any]:
    return {"id": object_id, "lastUpdated": last_updated, "ProfileId": profile_id}


def test_a_deleted_object_is_absent_from_a_later_export(
    client: Any, ctl: EmulatorControl, s3: Any, bucket: str, kms_key_arn: str
) -> None:
    # Given three orders, one of them deleted (DeleteProfileObject)
    start = now_ms() - 3 * DAY_MS
    ctl.seed(DOMAIN, "_order", [owned(f"o{i}", "p1", start + i) for i in range(3)])
    answer = ctl.delete(DOMAIN, "_order", ["o1"])
    assert answer["deleted"] == {"_order": ["o1"]}

    # When the whole history is exported
    create_export(client, kms_key_arn, f"s3://{bucket}", name="di-order", object_type="_order",
                  execution=on_demand(start, start + DAY_MS))  # fmt: skip

    # Then the deleted order is in no file, and the live objects say the same
    assert [r["id"] for r in exported(ctl, s3, bucket, "di-order")] == ["o0", "o2"]
    assert [o["id"] for o in ctl.objects(DOMAIN, "_order")] == ["o0", "o2"]


def test_deleting_a_profile_deletes_the_objects_that_reference_it(ctl: EmulatorControl) -> None:
    # Given two profiles, each with an order and an asset
    t = now_ms() - DAY_MS
    ctl.seed(DOMAIN, "_profile", [profile("p1", t), profile("p2", t)])
    ctl.seed(DOMAIN, "_order", [owned("o1", "p1", t), owned("o2", "p2", t)])
    ctl.seed(DOMAIN, "_asset", [owned("a1", "p1", t), owned("a2", "p2", t)])

    # When p1 is deleted (DeleteProfile)
    answer = ctl.delete(DOMAIN, "_profile", ["p1"])

    # Then p1 and what pertains to it are gone, p2's objects stay, and the answer lists every deletion
    assert answer["deleted"] == {"_profile": ["p1"], "_order": ["o1"], "_asset": ["a1"]}
    assert [o["id"] for o in ctl.objects(DOMAIN, "_profile")] == ["p2"]
    assert [o["id"] for o in ctl.objects(DOMAIN, "_order")] == ["o2"]
    assert [o["id"] for o in ctl.objects(DOMAIN, "_asset")] == ["a2"]


def test_live_objects_read_back_with_id_last_updated_and_the_object(ctl: EmulatorControl) -> None:
    ctl.seed(DOMAIN, "_profile", [profile("p2", 7, FirstName="B"), profile("p1", 5, FirstName="A")])
    assert ctl.objects(DOMAIN, "_profile") == [
        {"id": "p1", "lastUpdated": 5, "object": profile("p1", 5, FirstName="A")},
        {"id": "p2", "lastUpdated": 7, "object": profile("p2", 7, FirstName="B")},
    ]
    assert ctl.objects(DOMAIN, "_case") == []  # an object type never seeded holds nothing
    assert ctl.objects("other-domain", "_profile") == []


def test_a_merge_moves_objects_unions_fields_and_deletes_the_merged_profiles(ctl: EmulatorControl) -> None:
    # Given a main profile and two duplicates, with orders on each
    t = now_ms() - 2 * DAY_MS
    ctl.seed(
        DOMAIN,
        "_profile",
        [
            profile("main", t, FirstName="Ana", EmailAddress="", Attributes={"tier": "gold"}),
            profile("dup1", t, FirstName="Anna", EmailAddress="ana@example.com", Attributes={"tier": "x", "c": "sms"}),
            profile("dup2", t, PhoneNumber="+12065550100"),
            profile("other", t, FirstName="Bo"),
        ],
    )
    ctl.seed(DOMAIN, "_order", [owned("o-main", "main", t), owned("o-d1", "dup1", t), owned("o-d2", "dup2", t),
                                owned("o-other", "other", t)])  # fmt: skip

    # When the duplicates are merged into the main profile
    at = t + 1000
    answer = ctl.merge(DOMAIN, "main", ["dup1", "dup2"], at_ms=at)

    # Then the duplicates are gone, their orders belong to the main profile, the other profile is untouched
    assert answer["deleted"] == {"_profile": ["dup1", "dup2"]}
    assert answer["changed"] == {"_profile": ["main"], "_order": ["o-d1", "o-d2"]}
    profiles = {o["id"]: o["object"] for o in ctl.objects(DOMAIN, "_profile")}
    assert sorted(profiles) == ["main", "other"]
    owners = {o["id"]: o["object"]["ProfileId"] for o in ctl.objects(DOMAIN, "_order")}
    assert owners == {"o-main": "main", "o-d1": "main", "o-d2": "main", "o-other": "other"}
    # The main profile's values win; the fields it lacked come from the merged ones; it changed at the merge
    assert profiles["main"] == profile(
        "main",
        at,
        FirstName="Ana",
        EmailAddress="ana@example.com",
        PhoneNumber="+12065550100",
        Attributes={"tier": "gold", "c": "sms"},
    )
    assert profiles["other"]["lastUpdated"] == t


@pytest.mark.parametrize("moved_objects_updated", [True, False])
def test_the_knob_decides_whether_a_moved_object_is_in_the_next_incremental_export(
    client: Any, ctl: EmulatorControl, s3: Any, bucket: str, kms_key_arn: str, moved_objects_updated: bool
) -> None:
    # Given orders of two duplicate profiles, all exported once up to the day before the merge
    t = now_ms() - 3 * DAY_MS
    ctl.configure(merge_updates_last_updated=moved_objects_updated)
    ctl.seed(DOMAIN, "_profile", [profile("p1", t), profile("p2", t)])
    ctl.seed(DOMAIN, "_order", [owned("o1", "p1", t), owned("o2", "p2", t)])
    merge_at = t + DAY_MS

    # When p2 is merged into p1, and the next incremental window (from the merge on) is exported
    ctl.merge(DOMAIN, "p1", ["p2"], at_ms=merge_at)
    create_export(client, kms_key_arn, f"s3://{bucket}", name="di-order", object_type="_order",
                  execution=on_demand(merge_at, merge_at + DAY_MS))  # fmt: skip
    create_export(client, kms_key_arn, f"s3://{bucket}", name="di-profile", object_type="_profile",
                  execution=on_demand(merge_at, merge_at + DAY_MS))  # fmt: skip

    # Then the main profile is exported (it changed at the merge) ...
    assert [(r["id"], r["lastUpdated"]) for r in exported(ctl, s3, bucket, "di-profile")] == [("p1", merge_at)]
    # ... and the moved order only when the knob says a move updates lastUpdated
    orders = exported(ctl, s3, bucket, "di-order")
    if moved_objects_updated:
        assert orders == [{"id": "o2", "lastUpdated": merge_at, "ProfileId": "p1"}]
    else:
        assert orders == []
        assert {o["id"]: o["lastUpdated"] for o in ctl.objects(DOMAIN, "_order")} == {"o1": t, "o2": t}


def test_a_merge_without_at_ms_happens_at_the_emulators_now(ctl: EmulatorControl) -> None:
    ctl.configure(now_ms=1_700_000_000_000)
    ctl.seed(DOMAIN, "_profile", [profile("p1", 1), profile("p2", 1)])
    answer = ctl.merge(DOMAIN, "p1", ["p2"])
    assert abs(answer["atMs"] - 1_700_000_000_000) < 60_000
    assert ctl.objects(DOMAIN, "_profile")[0]["lastUpdated"] == answer["atMs"]


def test_a_merge_never_moves_last_updated_backwards(ctl: EmulatorControl) -> None:
    ctl.seed(DOMAIN, "_profile", [profile("p1", 5_000), profile("p2", 1)])
    ctl.seed(DOMAIN, "_order", [owned("o2", "p2", 9_000)])
    ctl.merge(DOMAIN, "p1", ["p2"], at_ms=2_000)
    assert ctl.objects(DOMAIN, "_profile")[0]["lastUpdated"] == 5_000
    assert ctl.objects(DOMAIN, "_order")[0]["lastUpdated"] == 9_000


@pytest.mark.parametrize(
    ("endpoint", "body", "status", "needle"),
    [
        ("merge", {"domainName": DOMAIN, "mainProfileId": "nope", "profileIdsToBeMerged": ["p2"]}, 404,
         "No _profile with id nope (mainProfileId)"),
        ("merge", {"domainName": DOMAIN, "mainProfileId": "p1", "profileIdsToBeMerged": ["p1"]}, 400,
         "cannot be merged into itself"),
        ("merge", {"domainName": DOMAIN, "mainProfileId": "p1", "profileIdsToBeMerged": []}, 400,
         "profileIdsToBeMerged must name at least one id"),
        ("merge", {"domainName": DOMAIN, "mainProfileId": "p1", "profileIdsToBeMerged": ["p2", "x", "y"]}, 404,
         "No _profile with id x, y (profileIdsToBeMerged)"),
        ("merge", {"domainName": DOMAIN, "mainProfileId": "p1", "profileIdsToBeMerged": "p2"}, 400,
         "profileIdsToBeMerged must be a list"),
        ("merge", {"domainName": DOMAIN, "mainProfileId": "p1", "profileIdsToBeMerged": [f"q{i}" for i in range(21)]},
         400, "at most 20"),
        ("merge", {"domainName": DOMAIN, "mainProfileId": "p1", "profileIdsToBeMerged": ["p2"], "atMs": "soon"}, 400,
         "atMs must be a non-negative integer"),
        ("merge", {"domainName": "bad domain", "mainProfileId": "p1", "profileIdsToBeMerged": ["p2"]}, 400,
         "domainName"),
        ("merge", [], 400, "body must be a JSON object"),
        ("delete", {"domainName": DOMAIN, "objectType": "_order", "ids": ["o9"]}, 404,
         "No _order object with id o9"),
        ("delete", {"domainName": DOMAIN, "objectType": "_order", "ids": []}, 400, "ids must name at least one id"),
        ("delete", {"domainName": DOMAIN, "objectType": "", "ids": ["o1"]}, 400, "objectType"),
        ("delete", {"domainName": DOMAIN, "objectType": "_order", "ids": [""]}, 400, "ids must be a list"),
    ],
)  # fmt: skip
def test_bad_lifecycle_requests_are_refused_and_change_nothing(
    ctl: EmulatorControl, endpoint: str, body: Any, status: int, needle: str
) -> None:
    # Given two profiles and an order
    ctl.seed(DOMAIN, "_profile", [profile("p1", 1), profile("p2", 1)])
    ctl.seed(DOMAIN, "_order", [owned("o1", "p2", 1)])
    before = (ctl.objects(DOMAIN, "_profile"), ctl.objects(DOMAIN, "_order"))

    # When a bad request is posted, Then it is refused with a message naming the problem
    with pytest.raises(EmulatorControlError) as err:
        ctl._call("POST", endpoint, body)
    assert err.value.status == status
    assert needle in err.value.message

    # And nothing changed
    assert (ctl.objects(DOMAIN, "_profile"), ctl.objects(DOMAIN, "_order")) == before


def test_a_partly_unknown_delete_deletes_nothing(ctl: EmulatorControl) -> None:
    ctl.seed(DOMAIN, "_order", [owned("o1", "p1", 1)])
    with pytest.raises(EmulatorControlError, match="o2"):
        ctl.delete(DOMAIN, "_order", ["o1", "o2"])
    assert [o["id"] for o in ctl.objects(DOMAIN, "_order")] == ["o1"]


def test_live_objects_need_a_domain_and_an_object_type(ctl: EmulatorControl) -> None:
    with pytest.raises(EmulatorControlError) as err:
        ctl._call("GET", "objects?domainName=" + DOMAIN)
    assert err.value.status == 400 and "objectType" in err.value.message
