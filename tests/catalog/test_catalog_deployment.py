"""The template's catalog resources agree with the code, and creating the catalog is idempotent and safe."""

from __future__ import annotations

import pytest
from cpexport.catalog import (
    SAVED_QUERIES,
    catalog_plan,
    database_name,
    exports_root_location,
    view_definition,
)
from cpexport.errors import CatalogConflict, ConfigurationError

from tests.build.cloudformation import ACCOUNT, PARTITION, REGION, deploy, role_statements
from tests.catalog.conftest import ACCOUNT as TEST_ACCOUNT
from tests.catalog.conftest import BUCKET, DATABASE, PREFIX


@pytest.fixture(scope="module")
def deployment():
    return deploy("shop")


@pytest.mark.parametrize("stack_name", ["customer-profiles-export", "customer-profiles-export-prod", "a-b-c1"])
def test_the_template_names_the_database_as_the_code_does(stack_name):
    deployed = deploy("shop", stack_name=stack_name)
    assert deployed.physical_name("GlueDatabase") == database_name(stack_name)


def test_the_saved_queries_are_the_catalogs_text(deployment):
    queries = {
        deployment.properties(name)["Name"]: deployment.properties(name)
        for name in deployment.of_type("AWS::Athena::NamedQuery")
    }
    assert {name: q["QueryString"] for name, q in queries.items()} == SAVED_QUERIES
    assert {q["Database"] for q in queries.values()} == {"customer_profiles_export"}
    assert {q["WorkGroup"] for q in queries.values()} == {deployment.physical_name("AthenaWorkGroup")}


def test_the_workgroup_enforces_encrypted_results_and_a_scan_cap():
    deployed = deploy("shop", AthenaBytesScannedCutoff="50000000")
    configuration = deployed.properties("AthenaWorkGroup")["WorkGroupConfiguration"]
    assert configuration["EnforceWorkGroupConfiguration"] is True
    assert configuration["BytesScannedCutoffPerQuery"] == "50000000"
    results = configuration["ResultConfiguration"]
    assert results["EncryptionConfiguration"] == {"EncryptionOption": "SSE_KMS", "KmsKey": deployed.arn("ExportKey")}
    assert results["OutputLocation"] == f"s3://{deployed.physical_name('ExportBucket')}/athena-results/"


def test_plan_creates_and_updates_its_own_tables_and_index_only_adds_partitions_to_them(deployment):
    glue = {}
    for role in deployment.of_type("AWS::IAM::Role"):
        for statement in role_statements(deployment, role):
            if any(action.lower().startswith(("glue:", "athena:")) or action == "*" for action in statement["Action"]):
                glue.setdefault(role, []).append(statement)
    # The state machines run Athena on the current-state tables (their grants: tests/build/test_template_permissions.py).
    assert set(glue) == {
        "PlanFunctionRole",
        "IndexExportFunctionRole",
        "ExportStateMachineRole",
        "MaintenanceStateMachineRole",
    }
    prefix = f"arn:{PARTITION}:glue:{REGION}:{ACCOUNT}"
    # Plan: the tables and views of its own database, nothing else of the catalog
    (plan,) = glue["PlanFunctionRole"]
    assert sorted(plan["Action"]) == ["glue:CreateTable", "glue:GetTable", "glue:UpdateTable"]
    assert plan["Resource"] == [
        f"{prefix}:catalog",
        f"{prefix}:database/customer_profiles_export",
        f"{prefix}:table/customer_profiles_export/*",
    ]
    # Index: partitions of the object types' tables only (views and stack-wide views do not end in `_versions`)
    (index,) = glue["IndexExportFunctionRole"]
    assert sorted(index["Action"]) == ["glue:CreatePartition", "glue:GetPartition", "glue:GetTable"]
    assert index["Resource"] == [
        f"{prefix}:catalog",
        f"{prefix}:database/customer_profiles_export",
        f"{prefix}:table/customer_profiles_export/*_versions",
    ]
    assert "Condition" not in plan and "Condition" not in index


def test_the_outputs_name_the_database_and_the_workgroup(deployment):
    outputs = deployment.template["Outputs"]
    assert deployment.resolve(outputs["GlueDatabaseName"]["Value"]) == "customer_profiles_export"
    assert deployment.resolve(outputs["AthenaWorkGroupName"]["Value"]) == "customer-profiles-export"


def plan(object_types):
    return catalog_plan(DATABASE, object_types, exports_root_location(BUCKET, PREFIX, TEST_ACCOUNT))


def test_creating_the_catalog_twice_changes_nothing_and_a_new_object_type_updates_the_stack_wide_views(aws):
    first = aws.catalog.ensure_catalog(plan(["_profile"]))
    assert set(first.values()) == {"created"}
    assert set(aws.catalog.ensure_catalog(plan(["_profile"])).values()) == {"unchanged"}

    grown = aws.catalog.ensure_catalog(plan(["_profile", "_order"]))

    assert grown == {
        "profile_versions": "unchanged",
        "order_versions": "created",
        "profile_current": "unchanged",
        "order_current": "created",
        "versions_by_type": "updated",
        "current_by_type": "updated",
    }
    union = view_definition(aws.catalog.table(DATABASE, "current_by_type")["ViewOriginalText"])["originalSql"]
    # The live objects: the current-state tables of both types.
    assert "order_state" in union and "profile_state" in union


def test_a_foreign_table_of_the_same_name_is_never_overwritten(aws):
    aws.glue.create_table(DatabaseName=DATABASE, TableInput={"Name": "profile_versions", "TableType": "EXTERNAL_TABLE"})
    with pytest.raises(CatalogConflict):
        aws.catalog.ensure_catalog(plan(["_profile"]))
    assert aws.catalog.table(DATABASE, "profile_versions").get("Parameters") is None


def test_the_catalog_needs_the_templates_database(aws):
    aws.glue.delete_database(Name=DATABASE)
    with pytest.raises(ConfigurationError, match="GlueDatabase creates it"):
        aws.catalog.ensure_catalog(plan(["_profile"]))


def test_the_docs_list_the_schema_of_every_standard_type():
    from cpexport.catalog import STANDARD_COLUMNS, table_name, view_name

    from tests.build.cloudformation import ROOT

    docs = (ROOT / "docs" / "catalog.md").read_text()
    for object_type, columns in STANDARD_COLUMNS.items():
        assert f"table `{table_name(object_type)}`, view `{view_name(object_type)}`" in docs
        for column in columns:
            assert f"| `{column.name}` | `{column.type}` |" in docs, (object_type, column.name)
