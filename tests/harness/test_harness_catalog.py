"""The catalog's resources offline: a Glue database, an Athena workgroup and saved queries, as AWS creates them.

moto's CloudFormation skips all three types; the harness creates them through the service APIs, gives
their `Ref` to Outputs and other resources, refuses what Athena or Glue would refuse, and removes them
with the stack (or when the stack rolls back).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from local.harness import OfflineStack
from local.harness.provisioners import DeploymentConflict, ResourceRefused
from local.harness.sam import UnresolvableReference, plan_deployment
from local.harness.stack import DeployedStack
from local.iam.operations import ApiCall, checks_for
from local.iam.resources import ResourceDirectory

CATALOG_TEMPLATE = Path(__file__).parent / "fixtures" / "catalog.yaml"


def _stack_names(stack: OfflineStack) -> set[str]:
    summaries = stack.client("cloudformation").list_stacks()["StackSummaries"]
    return {s["StackName"] for s in summaries if s["StackStatus"] != "DELETE_COMPLETE"}


@pytest.fixture
def catalog(stack: OfflineStack, unique: str) -> Iterator[DeployedStack]:
    """The catalog fixture deployed as a stack of its own, removed afterwards."""
    deployed = stack.add_stack(
        f"catalog-{unique}",
        {"DatabaseName": f"sales_{unique}", "WorkGroupName": f"sales-{unique}"},
        template_path=CATALOG_TEMPLATE,
    )
    try:
        yield deployed
    finally:
        if deployed in stack.others:
            stack.remove_stack(deployed)


def test_refs_of_provisioned_resources_reach_outputs_and_other_resources(
    stack: OfflineStack, catalog: DeployedStack, unique: str
) -> None:
    # Then the Outputs that Ref the database and the workgroup hold their names, also in describe_stacks
    outputs = catalog.outputs
    assert outputs["DatabaseOutput"] == f"sales_{unique}"
    assert outputs["WorkGroupOutput"] == f"sales-{unique}"
    assert outputs["ResultsOutput"] == f"sales-{unique} writes to s3://catalog-{unique}-results/athena/"
    described = stack.client("cloudformation").describe_stacks(StackName=catalog.stack_name)["Stacks"][0]
    assert {o["OutputKey"]: o["OutputValue"] for o in described["Outputs"]}["DatabaseOutput"] == f"sales_{unique}"
    # the database and the workgroup exist, the workgroup's numbers and switches typed as the API wants them
    glue, athena = stack.client("glue"), stack.client("athena")
    assert glue.get_database(Name=f"sales_{unique}")["Database"]["Description"] == "offline harness fixture"
    workgroup = athena.get_work_group(WorkGroup=f"sales-{unique}")["WorkGroup"]
    assert workgroup["Configuration"]["BytesScannedCutoffPerQuery"] == 10737418240
    assert workgroup["Configuration"]["EnforceWorkGroupConfiguration"] is True
    # and the saved query names both (its Ref is the id Athena generated)
    query = athena.get_named_query(NamedQueryId=catalog.physical_id("CountQuery"))["NamedQuery"]
    assert (query["Database"], query["WorkGroup"]) == (f"sales_{unique}", f"sales-{unique}")


def test_a_role_adds_partitions_to_the_tables_its_grant_names_and_nowhere_else(
    stack: OfflineStack, catalog: DeployedStack, unique: str
) -> None:
    # Given two tables of the fixture's database, one matching the role's `*_versions` grant
    database = f"sales_{unique}"
    glue = stack.client("glue")
    columns = {"Columns": [{"Name": "line", "Type": "string"}], "Location": "s3://bucket/things/"}
    for table in ("things_versions", "things_current"):
        glue.create_table(
            DatabaseName=database,
            TableInput={
                "Name": table,
                "PartitionKeys": [{"Name": "day", "Type": "string"}],
                "StorageDescriptor": columns,
            },
        )
    role = stack.account.broker.role_credentials(catalog.outputs["PartitionWriterRoleArn"], "lambda.amazonaws.com")
    as_role = stack.client("glue", role)
    partition = {"Values": ["2026-11-01"], "StorageDescriptor": columns | {"Location": "s3://bucket/things/d=1/"}}

    # When the role reads and adds partitions
    as_role.get_table(DatabaseName=database, Name="things_versions")
    as_role.create_partition(DatabaseName=database, TableName="things_versions", PartitionInput=partition)
    with pytest.raises(ClientError) as other_table:
        as_role.create_partition(DatabaseName=database, TableName="things_current", PartitionInput=partition)
    with pytest.raises(ClientError) as not_granted:
        as_role.create_table(DatabaseName=database, TableInput={"Name": "more_versions"})

    # Then only the granted table takes the partition; the others are refused naming action and table
    assert glue.get_partition(DatabaseName=database, TableName="things_versions", PartitionValues=["2026-11-01"])
    assert other_table.value.response["Error"]["Code"] == "AccessDeniedException"
    assert f"glue:CreatePartition on resource: arn:aws:glue:us-east-1:123456789012:table/{database}/things_current" in (
        str(other_table.value)
    )
    assert "glue:CreateTable" in str(not_granted.value)
    assert glue.get_partitions(DatabaseName=database, TableName="things_current")["Partitions"] == []


def test_a_name_taken_by_another_stack_fails_the_deployment_and_rolls_back_what_was_made(
    stack: OfflineStack, catalog: DeployedStack, unique: str
) -> None:
    # When another stack wants its own database but the first stack's workgroup name
    with pytest.raises(DeploymentConflict) as conflict:
        stack.add_stack(
            f"clash-{unique}",
            {"DatabaseName": f"clash_{unique}", "WorkGroupName": f"sales-{unique}"},
            template_path=CATALOG_TEMPLATE,
        )

    # Then the message names the resource, the name and its owner
    message = str(conflict.value)
    assert "WorkGroup (AWS::Athena::WorkGroup)" in message and f"'sales-{unique}'" in message
    assert f"'{catalog.stack_name}'" in message
    # and, as CloudFormation rolls back, the database it had created is gone with the stack
    with pytest.raises(ClientError) as gone:
        stack.client("glue").get_database(Name=f"clash_{unique}")
    assert gone.value.response["Error"]["Code"] == "EntityNotFoundException"
    assert f"clash-{unique}" not in _stack_names(stack)
    # while the first stack's workgroup is untouched
    assert stack.client("athena").get_work_group(WorkGroup=f"sales-{unique}")["WorkGroup"]


def test_a_database_name_in_another_case_is_the_same_database_to_glue(
    stack: OfflineStack, catalog: DeployedStack, unique: str
) -> None:
    with pytest.raises(DeploymentConflict, match=f"'sales_{unique}'"):
        stack.add_stack(
            f"upper-{unique}",
            {"DatabaseName": f"SALES_{unique}", "WorkGroupName": f"upper-{unique}"},
            template_path=CATALOG_TEMPLATE,
        )


def test_a_scan_cap_below_athenas_minimum_is_refused_as_athena_refuses_it(stack: OfflineStack, unique: str) -> None:
    with pytest.raises(ResourceRefused) as refused:
        stack.add_stack(
            f"cap-{unique}",
            {"DatabaseName": f"cap_{unique}", "WorkGroupName": f"cap-{unique}", "BytesScannedCutoff": "9999999"},
            template_path=CATALOG_TEMPLATE,
        )

    assert "InvalidRequestException" in str(refused.value) and "BytesScannedCutoffPerQuery" in str(refused.value)
    assert not stack.client("athena").get_work_group(WorkGroup=f"cap-{unique}").get("WorkGroup")
    with pytest.raises(ClientError):
        stack.client("glue").get_database(Name=f"cap_{unique}")


def test_removing_the_stack_removes_the_database_and_the_workgroup(
    stack: OfflineStack, catalog: DeployedStack, unique: str
) -> None:
    stack.remove_stack(catalog)

    with pytest.raises(ClientError):
        stack.client("glue").get_database(Name=f"sales_{unique}")
    assert not stack.client("athena").get_work_group(WorkGroup=f"sales-{unique}").get("WorkGroup")


def test_a_ref_known_only_after_creation_is_refused_at_planning() -> None:
    # A saved query's Ref is the id Athena generates: nothing can be given it before it exists
    template = {
        "Resources": {"Query": {"Type": "AWS::Athena::NamedQuery", "Properties": {"Name": "q"}}},
        "Outputs": {"QueryId": {"Value": {"Ref": "Query"}}},
    }
    with pytest.raises(UnresolvableReference, match=r"Outputs\.QueryId refers to Query"):
        plan_deployment(template, {}, skipped_types={"AWS::Athena::NamedQuery"}, ref_properties={})


def _glue_call(operation: str, **params: object) -> ApiCall:
    return ApiCall("glue", operation, params, "/", {}, "123456789012", "us-east-1")


@pytest.mark.parametrize(
    ("operation", "params", "resources"),
    [
        (
            "GetTable",
            {"DatabaseName": "Shop", "Name": "Profile_Versions"},
            ["database/shop", "table/shop/profile_versions"],
        ),
        ("CreateTable", {"DatabaseName": "shop", "TableInput": {"Name": "t"}}, ["database/shop", "table/shop/t"]),
        ("CreatePartition", {"DatabaseName": "shop", "TableName": "t"}, ["database/shop", "table/shop/t"]),
        ("GetTables", {"DatabaseName": "shop"}, ["database/shop", "table/shop/*"]),
        ("CreateDatabase", {"DatabaseInput": {"Name": "Shop"}}, ["database/shop"]),
    ],
)
def test_glue_calls_are_authorized_on_the_catalog_the_database_and_the_table(
    operation: str, params: dict[str, object], resources: list[str]
) -> None:
    checks = checks_for(_glue_call(operation, **params), ResourceDirectory("123456789012", "us-east-1"))

    assert {check.action for check in checks} == {f"glue:{operation}"}
    prefix = "arn:aws:glue:us-east-1:123456789012:"
    assert [check.resource for check in checks] == [f"{prefix}catalog", *(prefix + r for r in resources)]
