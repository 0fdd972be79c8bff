"""Objects that go away: DeleteProfileObject, DeleteProfile and MergeProfiles, and what later exports show."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from local.emulator import EmulatorControl, EmulatorControlError
from local.emulator.lifecycle import Deletion, LifecyclePlan, Merge, auto_merges, duplicate_groups, plan_lifecycle
from local.emulator.profiles import delete_objects, merge_profiles
from local.emulator.synthetic import generate
from local.soak.world import World, WorldDisagreement, epoch_ms
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


# ----------------------------------------------------------------- the lifecycle generator and the soak's World


def test_synthetic_profiles_can_be_duplicates_and_otherwise_stay_as_they_were() -> None:
    # Given the same profiles drawn without and with duplicates
    plain = generate("_profile", 60, 0, DAY_MS, seed=7)
    with_duplicates = generate("_profile", 60, 0, DAY_MS, seed=7, duplicate_rate=0.3)

    # Then ids and times are the same, and some profiles now share an e-mail or a phone with another
    assert [(p["id"], p["lastUpdated"]) for p in with_duplicates] == [(p["id"], p["lastUpdated"]) for p in plain]
    assert duplicate_groups(plain) == []
    groups = duplicate_groups(with_duplicates)
    assert groups and sum(len(g) for g in groups) >= 10
    # A new batch can duplicate people already known
    known = generate("_profile", 5, 0, DAY_MS, seed=1)
    later = generate("_profile", 20, DAY_MS, 2 * DAY_MS, seed=2, duplicate_rate=1.0, duplicates_of=known)
    assert any(p["EmailAddress"] in {k["EmailAddress"] for k in known} for p in later)


def test_an_auto_merge_keeps_the_most_recent_profile_of_each_person() -> None:
    profiles = [
        profile("a", 3, EmailAddress="x@example.com"),
        profile("b", 9, EmailAddress="x@example.com", PhoneNumber="+1"),
        profile("c", 1, PhoneNumber="+1"),  # the same person as b by phone, so as a by e-mail
        profile("d", 5, EmailAddress="y@example.com"),
    ]
    assert duplicate_groups(profiles) == [["a", "b", "c"]]
    assert auto_merges(profiles) == [Merge("b", ("a", "c"))]


def test_a_lifecycle_plan_is_repeatable_and_each_step_finds_what_it_names() -> None:
    # Given a domain's live objects with duplicates
    profiles = generate("_profile", 40, 0, DAY_MS, seed=3, duplicate_rate=0.25)
    ids = [p["id"] for p in profiles]
    live = {
        "_profile": profiles,
        "_order": generate("_order", 30, 0, DAY_MS, seed=4, profile_ids=ids),
        "_asset": generate("_asset", 30, 0, DAY_MS, seed=5, profile_ids=ids),
    }
    for seed in range(30):
        # When a plan is drawn twice from the same seed
        plan = plan_lifecycle(random.Random(seed), live, DAY_MS, auto_merge=True, profile_deletion_probability=0.5)
        assert plan == plan_lifecycle(random.Random(seed), live, DAY_MS, auto_merge=True,
                                      profile_deletion_probability=0.5)  # fmt: skip

        # Then applying it, step by step, never names an object already gone
        objects = {t: {o["id"]: dict(o) for o in objs} for t, objs in live.items()}
        for deletion in plan.deletions:
            delete_objects(objects, deletion.object_type, list(deletion.ids))
        for merge in plan.merges:
            merge_profiles(objects, merge.main_profile_id, list(merge.profile_ids_to_merge), DAY_MS,
                           moved_objects_updated=True)  # fmt: skip
        assert plan.merges and duplicate_groups(objects["_profile"].values()) == []


@pytest.mark.parametrize("moved_objects_updated", [True, False])
def test_the_world_and_the_emulator_agree_after_a_lifecycle_and_a_full_export_shows_it(
    client: Any, ctl: EmulatorControl, s3: Any, bucket: str, kms_key_arn: str, moved_objects_updated: bool
) -> None:
    # Given a World of a few days with duplicate profiles, and the emulator holding it
    ctl.configure(merge_updates_last_updated=moved_objects_updated)
    world = World(DOMAIN, ("_profile", "_asset", "_order"), duplicate_profile_rate=0.3, link_to_profiles=True)
    day0 = datetime.now(UTC).replace(microsecond=0) - timedelta(days=6)
    rng = random.Random(11)
    for day in range(3):
        world.change(ctl, day0 + timedelta(days=day), rng)
    before = {t: {o["id"]: o for o in world.live(t)} for t in world.object_types}

    # When a weekly lifecycle (deletions and the auto-merge) is applied to both
    at = day0 + timedelta(days=3, hours=1)
    plan = world.lifecycle(ctl, at, rng, auto_merge=True)

    # Then something happened, and the World and the emulator hold the same objects
    assert plan.deletions and plan.merges
    for object_type in world.object_types:
        assert world.live(object_type) == ctl.objects(DOMAIN, object_type), object_type
    # Deleted and merged-away ids left the World; moved orders point at main profiles, timed per the knob
    gone = {i for d in plan.deletions if d.object_type == "_order" for i in d.ids}
    assert gone and not gone & set(world.objects["_order"])
    merged_away = {i for m in plan.merges for i in m.profile_ids_to_merge}
    assert not merged_away & set(world.objects["_profile"])
    moved = [o for i, o in world.objects["_order"].items() if before["_order"][i]["object"]["ProfileId"] in merged_away]
    assert moved and all(o["ProfileId"] in world.objects["_profile"] for o in moved)
    at_ms = epoch_ms(at)
    assert all((o["lastUpdated"] == at_ms) == moved_objects_updated for o in moved)

    # And a full export of the orders holds exactly the World's live orders
    start = epoch_ms(day0)
    create_export(client, kms_key_arn, f"s3://{bucket}", name="di-order", object_type="_order",
                  execution=on_demand(start, at_ms + 1))  # fmt: skip
    records = exported(ctl, s3, bucket, "di-order")
    assert sorted(r["id"] for r in records) == sorted(world.objects["_order"])
    assert {r["id"]: r for r in records} == world.objects["_order"]


def test_the_world_refuses_to_go_on_when_the_emulator_did_something_else(ctl: EmulatorControl) -> None:
    # Given a World that does not know the domain's _case objects, which reference its profile
    world = World(DOMAIN, ("_profile",))
    world.objects["_profile"]["p1"] = profile("p1", 1)
    ctl.seed(DOMAIN, "_profile", [profile("p1", 1)])
    ctl.seed(DOMAIN, "_case", [owned("c1", "p1", 1)])

    # When it deletes the profile, Then the emulator's cascade to c1 is reported as a disagreement
    with pytest.raises(WorldDisagreement, match="c1"):
        world.apply_lifecycle(ctl, LifecyclePlan(at_ms=2, deletions=[Deletion("_profile", ("p1",))]))


def test_a_job_already_running_still_writes_what_it_selected(
    client: Any, ctl: EmulatorControl, s3: Any, bucket: str, kms_key_arn: str
) -> None:
    # Given an export job that selected an order and is still running
    ctl.configure(job_duration_seconds=20.0)  # 1 s at the tests' time scale: its one file is due after 0.5 s
    start = now_ms() - 3 * DAY_MS
    ctl.seed(DOMAIN, "_order", [owned("o1", "p1", start)])
    create_export(client, kms_key_arn, f"s3://{bucket}", name="di-order", object_type="_order",
                  execution=on_demand(start, start + DAY_MS))  # fmt: skip

    # When the order is deleted before the job writes its file
    ctl.delete(DOMAIN, "_order", ["o1"])
    assert ctl.jobs()[0]["files"] == []

    # Then the running job still writes it: its selection was made when it started
    assert [r["id"] for r in exported(ctl, s3, bucket, "di-order")] == ["o1"]
    assert ctl.objects(DOMAIN, "_order") == []
