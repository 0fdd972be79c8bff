"""Any number of domains: 25 deploy, each is granted by its ARN, and one scheduled run exports them all.

The stack runs under the strict offline IAM: the AppIntegrations emulator checks StartExport's
profile:* grants on each domain, so a domain left out of the grants would fail its export here.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from local.harness.deployment import DeploymentError
from tests.e2e_local.conftest import DAY0, Seeder, deploy, run, tick
from tests.strict.conftest import policy_document

pytestmark = pytest.mark.e2e
# More than the ten the template once granted; names with '-' and '_' and capitals, as Customer Profiles allows.
DOMAINS = [f"shop-{n:02d}" for n in range(1, 25)] + ["Last_Domain25"]


@pytest.fixture(scope="module")
def deployed():
    # 25 domains x 1 object type need 25 data integrations: the Region's quota (20 by default) is
    # raised, as the README tells an operator to do. One export at a time: every domain's export is
    # merged into the same Iceberg table (profile_state), and offline the merge's retry backoff is
    # time-scaled while the queries are not, so concurrent merges would exhaust their retries in a
    # second (ICEBERG_COMMIT_ERROR) for reasons that have nothing to do with the number of domains.
    yield from deploy(
        {
            "DomainNames": ",".join(DOMAINS),
            "ObjectTypes": "_profile",
            "IndexSettleSeconds": "10",
            "MaxConcurrentExports": "1",
        },
        emulator_options={"max_data_integrations": len(DOMAINS)},
    )


def test_one_scheduled_run_exports_every_one_of_25_domains(stack):
    stack, observer = stack
    # Given a few profiles in each domain, updated on the first day
    seeded = {}
    for n, domain in enumerate(DOMAINS):
        seeded[domain] = Seeder(stack, domain).add("_profile", 3, DAY0, DAY0 + timedelta(hours=20), seed=n)

    # When the schedule fires once
    result = tick(stack, day=1, timeout=900)  # 25 exports one after the other

    # Then the execution succeeded, and every domain was exported: one job, a manifest listing
    # exactly its seeded profiles, and its watermark moved to the window's end
    failed = {
        domain: [(run["status"], run.get("reason")) for run in observer.runs(domain, "_profile")]
        for domain in DOMAINS
        if [run["status"] for run in observer.runs(domain, "_profile")] != ["SUCCEEDED"]
    }
    assert result["status"] == "SUCCEEDED" and not failed, (
        result.get("error"),
        failed,
        [message["Message"][:4000] for message in observer.notifications()],
    )
    jobs = stack.emulator_control.jobs()
    assert sorted(job["domainName"] for job in jobs) == sorted(DOMAINS)
    for domain in DOMAINS:
        (run,) = observer.runs(domain, "_profile")
        assert run["status"] == "SUCCEEDED", (domain, run)
        assert f"/{domain}/" in run["manifestKey"]
        exported = sorted(record["id"] for record in observer.manifest_records(run["manifestKey"]))
        assert exported == sorted(profile["id"] for profile in seeded[domain]), domain
        assert observer.watermark(domain, "_profile") == "2026-11-01T23:30:00Z", domain
    (message,) = observer.notifications()
    assert message["MessageAttributes"]["status"]["Value"] == "SUCCEEDED"
    assert "25 exported, 0 failed" in message["Subject"]


def test_the_start_function_holds_one_grant_per_domain_by_its_arn(stack):
    stack, _ = stack
    iam = stack.client("iam")
    role = stack.physical_id("StartExportFunctionRole").rsplit("/", 1)[-1]
    names = set(iam.list_role_policies(RoleName=role)["PolicyNames"])
    assert {f"profile-domain-{domain}" for domain in DOMAINS} <= names
    assert len([name for name in names if name.startswith("profile-domain-")]) == len(DOMAINS)


@pytest.mark.parametrize(
    ("domain_names", "refused"),
    [("shop-01,my shop", "'my shop'"), ("shop-01,", "''"), ("shop-01," + "d" * 65, repr("d" * 65))],
    ids=["a space", "an empty item", "65 characters"],
)
def test_a_domain_name_the_functions_would_refuse_fails_the_deployment(stack, domain_names, refused):
    # A name the functions refuse at init (cpexport.config) must not deploy green and fail every run
    stack, _ = stack
    with pytest.raises(DeploymentError) as error:
        stack.add_stack("bad-names", {"DomainNames": domain_names, "ObjectTypes": "_profile"})
    assert "ValidationError: Parameter 'DomainNames' failed to satisfy constraint" in str(error.value)
    assert f"got {refused}" in str(error.value)
    names = [
        s["StackName"]
        for s in stack.client("cloudformation").list_stacks()["StackSummaries"]
        if s["StackStatus"] != "DELETE_COMPLETE"
    ]
    assert "bad-names" not in names


def test_without_its_grant_the_25th_domain_cannot_export(stack):
    # The offline IAM checks StartExport's grant on each domain: without the 25th domain's policy
    # (a template that granted 24) its export fails, so the first test's success is the grants' doing.
    stack, observer = stack
    iam = stack.client("iam")
    role = stack.physical_id("StartExportFunctionRole").rsplit("/", 1)[-1]
    name = f"profile-domain-{DOMAINS[-1]}"
    document = policy_document(iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"])
    iam.delete_role_policy(RoleName=role, PolicyName=name)
    try:
        result = run(stack, {"domainName": DOMAINS[-1]}, timeout=300)
    finally:
        iam.put_role_policy(RoleName=role, PolicyName=name, PolicyDocument=json.dumps(document))

    assert (result["status"], result.get("error")) == ("FAILED", "ExportFailed")
    (message,) = observer.notifications()
    assert f"{DOMAINS[-1]} / _profile: FAILED" in message["Message"]
    assert "AccessDenied" in message["Message"] and "profile:" in message["Message"]
