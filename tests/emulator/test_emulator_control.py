"""The control surface: seeding, jobs, config, reset, wait_idle, and the server's own guards."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from local.emulator import EmulatorConfig, EmulatorControl, EmulatorControlError, EmulatorServer
from tests.emulator.emulator_helpers import (
    DAY_MS,
    DOMAIN,
    NO_RETRY,
    create_data_integration,
    create_export,
    now_ms,
    on_demand,
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"domainName": "bad domain", "objectType": "_profile", "objects": []}, "domainName"),
        ({"domainName": DOMAIN, "objectType": "", "objects": []}, "objectType"),
        ({"domainName": DOMAIN, "objectType": "_profile", "objects": {}}, "objects must be a list"),
        ({"domainName": DOMAIN, "objectType": "_profile", "objects": [1]}, "objects[0] must be a JSON object"),
        ({"domainName": DOMAIN, "objectType": "_profile", "objects": [{"lastUpdated": 1}]}, "objects[0].id"),
        ({"domainName": DOMAIN, "objectType": "_profile", "objects": [{"id": "a"}]}, "objects[0].lastUpdated"),
        (
            {"domainName": DOMAIN, "objectType": "_profile", "objects": [{"id": "a", "lastUpdated": "1"}]},
            "objects[0].lastUpdated",
        ),
        (
            {"domainName": DOMAIN, "objectType": "_profile", "objects": [{"id": "a", "lastUpdated": True}]},
            "objects[0].lastUpdated",
        ),
        (
            {"domainName": DOMAIN, "objectType": "_profile", "objects": [{"id": "a", "lastUpdated": -1}]},
            "objects[0].lastUpdated",
        ),
        (
            {"domainName": DOMAIN, "objectType": "_p", "objects": [{"id": "a", "lastUpdated": 1, "x": "y" * 260_000}]},
            "250",
        ),
    ],
)
def test_seed_rejects_bad_input_with_a_clear_message(ctl: EmulatorControl, body: dict[str, Any], needle: str) -> None:
    with pytest.raises(EmulatorControlError) as err:
        ctl._call("POST", "objects", body)
    assert err.value.status == 400
    assert needle in err.value.message


def test_seed_upserts_by_id_and_only_the_latest_version_exports(
    client: Any, ctl: EmulatorControl, s3: Any, bucket: str, kms_key_arn: str
) -> None:
    # Given an object seeded twice under the same id
    start = now_ms() - 3 * DAY_MS
    ctl.seed(DOMAIN, "_profile", [{"id": "p1", "lastUpdated": start, "FirstName": "Old"}])
    result = ctl.seed(DOMAIN, "_profile", [{"id": "p1", "lastUpdated": start + 1, "FirstName": "New"}])
    assert result == {"domainName": DOMAIN, "objectType": "_profile", "upserted": 1, "total": 1}

    # When exported, Then only the latest version is there
    create_export(client, kms_key_arn, f"s3://{bucket}", execution=on_demand(start, start + DAY_MS))
    (job,) = ctl.wait_idle(timeout=5)
    body = s3.get_object(Bucket=bucket, Key=job["files"][0])["Body"].read()
    assert [json.loads(line)["FirstName"] for line in body.splitlines()] == ["New"]


def test_jobs_report_everything_about_a_job(client: Any, ctl: EmulatorControl, bucket: str, kms_key_arn: str) -> None:
    start = now_ms() - 3 * DAY_MS
    ctl.seed(DOMAIN, "_profile", [{"id": "p1", "lastUpdated": start}])
    before = now_ms()
    export = create_export(client, kms_key_arn, f"s3://{bucket}/p", execution=on_demand(start, start + DAY_MS))
    after = now_ms()
    (job,) = ctl.wait_idle(timeout=5)
    assert job["dataIntegrationName"] == "di-profile" and job["dataIntegrationArn"] == export.arn
    assert job["associationId"] == export.association_id
    assert (job["domainName"], job["objectType"]) == (DOMAIN, "_profile")
    assert (job["startTimeMs"], job["endTimeMs"]) == (start, start + DAY_MS)
    assert before <= job["requestTimeMs"] <= after
    assert (job["status"], job["statusMessage"], job["records"]) == ("COMPLETED", None, 1)
    assert job["destination"] == f"s3://{bucket}/p" and len(job["files"]) == 1


def test_config_get_and_partial_post(ctl: EmulatorControl) -> None:
    before = ctl.config()
    assert before == EmulatorConfig(job_duration_seconds=1.0, time_scale=0.05).model_dump()
    after = ctl.configure(lag_minutes=5, fail_object_types=["_case"])
    assert after == {**before, "lag_minutes": 5.0, "fail_object_types": ["_case"]}
    assert ctl.config() == after


def test_config_defaults_are_documented_values() -> None:
    cfg = EmulatorConfig()
    assert (cfg.job_duration_seconds, cfg.update_while_in_progress, cfg.stale_status_seconds) == (1.0, "reject", 0.0)
    assert (cfg.throttle_rate, cfg.internal_error_rate, cfg.lag_minutes, cfg.records_per_file) == (0.0, 0.0, 30.0, 100)
    assert (cfg.time_scale, cfg.clock_offset_ms, cfg.max_concurrent_jobs, cfg.random_seed) == (1.0, 0, 20, 0)


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"throttle_rate": 2}, "throttle_rate"),
        ({"update_while_in_progress": "maybe"}, "update_while_in_progress"),
        ({"records_per_file": 0}, "records_per_file"),
        ({"no_such_knob": 1}, "no_such_knob"),
        ({"access_denied_operations": ["DeleteEverything"]}, "DeleteEverything"),
        ({"now_ms": "yesterday"}, "now_ms"),
        ({"job_duration_by_object_type": {"_profile": -1}}, "job_duration_by_object_type"),
    ],
)
def test_bad_config_is_refused_and_changes_nothing(ctl: EmulatorControl, change: dict[str, Any], needle: str) -> None:
    before = ctl.config()
    with pytest.raises(EmulatorControlError) as err:
        ctl.configure(**change)
    assert err.value.status == 400 and needle in err.value.message
    assert ctl.config() == before


def test_reset_forgets_everything_and_restores_the_initial_config(
    make_emulator: Callable[..., EmulatorServer], boto_session: Any, bucket: str, kms_key_arn: str
) -> None:
    # Given state of every kind and a changed config
    emu = make_emulator(records_per_file=5)
    ctl = EmulatorControl(emu.url)
    client = boto_session.client("appintegrations", endpoint_url=emu.url, config=NO_RETRY)
    start = now_ms() - 3 * DAY_MS
    ctl.seed(DOMAIN, "_profile", [{"id": "p1", "lastUpdated": start}])
    create_export(client, kms_key_arn, f"s3://{bucket}", execution=on_demand(start))
    ctl.configure(records_per_file=7)

    # When reset (over HTTP, then in-process)
    for do_reset in (ctl.reset, emu.reset):
        do_reset()

        # Then nothing remains and the construction config is back
        assert client.list_data_integrations()["DataIntegrations"] == []
        assert ctl.jobs() == []
        assert ctl.config()["records_per_file"] == 5
    # And a re-created export finds no seeded objects
    create_export(client, kms_key_arn, f"s3://{bucket}", execution=on_demand(start))
    (job,) = ctl.wait_idle(timeout=5)
    assert job["records"] == 0


def test_wait_idle_times_out_while_a_job_runs(
    make_emulator: Callable[..., EmulatorServer], boto_session: Any, bucket: str, kms_key_arn: str
) -> None:
    # Given a job that runs until the control API ends it
    emu = make_emulator(never_ending_rate=1.0)
    ctl = EmulatorControl(emu.url)
    client = boto_session.client("appintegrations", endpoint_url=emu.url, config=NO_RETRY)
    create_export(client, kms_key_arn, f"s3://{bucket}", execution=on_demand(now_ms() - DAY_MS))

    # When waiting for idleness, Then it gives up naming the running job
    (job,) = ctl.jobs()
    with pytest.raises(TimeoutError, match=f"IN_PROGRESS.*{job['id']}"):
        ctl.wait_idle(timeout=0.2)

    # And once the job has ended, waiting returns the jobs
    ctl.finish_job(job["id"])
    assert [j["status"] for j in ctl.wait_idle(timeout=5)] == ["COMPLETED"]


def test_unknown_control_endpoint_is_an_error(ctl: EmulatorControl) -> None:
    with pytest.raises(EmulatorControlError, match="Unknown emulator control endpoint"):
        ctl._call("GET", "nothing-here")


def test_server_binds_to_loopback_only() -> None:
    with pytest.raises(ValueError, match="loopback"):
        EmulatorServer(host="0.0.0.0")


def test_server_url_and_in_process_configure(emu: EmulatorServer, ctl: EmulatorControl) -> None:
    assert emu.url == f"http://127.0.0.1:{emu.port}"
    emu.configure(lag_minutes=1)
    assert ctl.config()["lag_minutes"] == 1.0
    assert ctl.health()["status"] == "ok"


def test_data_integrations_are_separate_per_emulator(
    make_emulator: Callable[..., EmulatorServer], boto_session: Any, kms_key_arn: str
) -> None:
    one, two = make_emulator(), make_emulator()
    c1 = boto_session.client("appintegrations", endpoint_url=one.url, config=NO_RETRY)
    c2 = boto_session.client("appintegrations", endpoint_url=two.url, config=NO_RETRY)
    create_data_integration(c1, kms_key_arn)
    assert c2.list_data_integrations()["DataIntegrations"] == []


def test_module_runs_standalone_and_prints_its_url() -> None:
    # Given the emulator started as a process
    proc = subprocess.Popen(
        [sys.executable, "-m", "local.emulator", "--port", "0", "--config", '{"lag_minutes": 2}'],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        # When it prints its URL, Then the control API answers with the given config
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        assert EmulatorControl(url).config()["lag_minutes"] == 2.0
    finally:
        proc.terminate()
        proc.wait(timeout=10)
