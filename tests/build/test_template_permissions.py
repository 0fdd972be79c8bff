"""Who may do what once the stack is deployed: each grant resolved as IAM, SQS and KMS would see it."""

from __future__ import annotations

from fnmatch import fnmatchcase

import pytest

from tests.build.cloudformation import (
    ACCOUNT,
    PARTITION,
    REGION,
    attached_policy_statements,
    deploy,
    every_statement,
    function_roles,
    role_statements,
)

# What each function's code calls on each table (layers/common/cpexport, functions/). The product adds
# items and conditions over time, not actions: a new action here means a new kind of call.
DYNAMODB_ACTIONS = {
    "PlanFunction": {"StateTable": {"GetItem"}},
    "StartExportFunction": {
        "StateTable": {"GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query"},
        # Powertools idempotency: read, claim, complete, release.
        "IdempotencyTable": {"GetItem", "PutItem", "UpdateItem", "DeleteItem"},
    },
    "CheckExportFunction": {},
    "IndexExportFunction": {"StateTable": {"GetItem", "PutItem", "UpdateItem", "DeleteItem"}},
    "CountRecordsFunction": {},
    "RecordFailureFunction": {"StateTable": {"GetItem", "PutItem", "UpdateItem", "DeleteItem"}},
    "NotifyFunction": {"IdempotencyTable": {"GetItem", "PutItem", "UpdateItem", "DeleteItem"}},
    # Only with RawExportRetentionDays > 0: Glue partitions, no table.
    "ExpireRawPartitionsFunction": {},
}

# The only AWS managed policies a function role may carry: logging and tracing, nothing on data.
MANAGED_POLICIES = {
    f"arn:{PARTITION}:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
    f"arn:{PARTITION}:iam::aws:policy/AWSXrayWriteOnlyAccess",
}

PROFILE_ACTIONS_ON_DOMAINS = {
    "profile:CreateSnapshot",
    "profile:GetSnapshot",
    "profile:GetDomain",
    "profile:GetProfileObjectType",
}


def domain_arn(domain: str) -> str:
    return f"arn:{PARTITION}:profile:{REGION}:{ACCOUNT}:domains/{domain}"


def grants(statements, action: str, resource: str) -> bool:
    """Whether an Allow statement covers the action on the resource (IAM wildcards, no conditions)."""
    return any(
        statement["Effect"] == "Allow"
        and any(fnmatchcase(action.lower(), pattern.lower()) for pattern in statement["Action"])
        and any(fnmatchcase(resource, pattern) for pattern in statement["Resource"])
        for statement in statements
    )


@pytest.fixture(scope="module")
def shop():
    return deploy("shop,outlet")


@pytest.fixture(scope="module")
def retaining():
    """A stack that keeps raw exports 7 days: every function of the template exists."""
    return deploy("shop,outlet", RawExportRetentionDays="7")


def test_no_function_is_granted_a_dynamodb_action_outside_its_list(retaining):
    shop = retaining
    roles = function_roles(shop)
    assert set(roles) == set(DYNAMODB_ACTIONS), "a function was added or renamed: list what it calls"
    tables = {shop.arn(name): name for name in shop.of_type("AWS::DynamoDB::Table")}
    for function, role in roles.items():
        granted: dict[str, set[str]] = {}
        for statement in every_statement(shop, role):
            actions = [a for a in statement["Action"] if a.lower().startswith("dynamodb:") or a == "*"]
            for resource in statement["Resource"] if actions else []:
                table = tables.get(resource, resource)
                granted.setdefault(table, set()).update(a.split(":", 1)[-1] for a in actions)
        assert granted == DYNAMODB_ACTIONS[function], function
        assert set(shop.properties(role).get("ManagedPolicyArns", [])) <= MANAGED_POLICIES, function


TWENTY_FIVE = ",".join([f"shop-{n:02d}" for n in range(1, 25)] + ["Last_Domain25"])


@pytest.mark.parametrize(
    "domain_names",
    ["shop", "shop,outlet", "a,b,c,d,e,f,g,h,i,j-10,k_11", "my_domain-1,MyDomain2", TWENTY_FIVE],
    ids=["one domain", "two", "eleven", "mixed case and punctuation", "twenty-five"],
)
def test_start_export_may_snapshot_and_read_exactly_the_configured_domains(domain_names):
    deployment = deploy(domain_names)
    domains = domain_names.split(",")
    profile = {}
    for function, role in function_roles(deployment).items():
        statements = [
            s for s in every_statement(deployment, role) if any(a.startswith("profile:") for a in s["Action"])
        ]
        if statements:
            profile[function] = statements
    assert set(profile) == {"StartExportFunction"}
    statements = profile["StartExportFunction"]
    for domain in domains:
        for action in PROFILE_ACTIONS_ON_DOMAINS:
            assert grants(statements, action, domain_arn(domain)), (action, domain)
        assert grants(statements, "profile:GetProfileObjectType", f"{domain_arn(domain)}/object-types/_profile")
    # Each domain by its exact ARN, nothing broader: no wildcard but the object types of a configured domain
    granted = [resource for statement in statements for resource in statement["Resource"]]
    assert sorted(granted) == sorted(
        [domain_arn(d) for d in domains] + [f"{domain_arn(d)}/object-types/*" for d in domains]
    )
    assert all("*" not in resource.removesuffix("/object-types/*") for resource in granted)
    assert not grants(statements, "profile:CreateSnapshot", domain_arn("someone-elses-domain"))
    assert not grants(
        statements, "profile:GetProfileObjectType", f"{domain_arn('someone-elses-domain')}/object-types/x"
    )
    assert {a for s in statements for a in s["Action"]} == PROFILE_ACTIONS_ON_DOMAINS
    # one policy of the role per domain (template.yaml's StartExportDomainGrants), none of another role
    role = deployment.physical_name("StartExportFunctionRole")
    per_domain = {
        deployment.properties(name)["PolicyName"]
        for name in deployment.of_type("AWS::IAM::Policy")
        if role in deployment.properties(name)["Roles"]
    }
    assert per_domain == {f"profile-domain-{d}" for d in domains}


def test_only_start_export_may_create_kms_grants_and_only_for_an_aws_resource(shop):
    creators = {}
    for name in shop.of_type("AWS::IAM::Role"):
        for statement in every_statement(shop, name):
            if any(fnmatchcase("kms:creategrant", pattern.lower()) for pattern in statement["Action"]):
                creators[name] = statement
    assert set(creators) == {"StartExportFunctionRole"}
    statement = creators["StartExportFunctionRole"]
    assert statement["Condition"] == {"Bool": {"kms:GrantIsForAWSResource": "true"}}
    assert statement["Resource"] == [shop.arn("ExportKey")]
    assert statement["Action"] == ["kms:CreateGrant"]


def test_start_export_uses_the_export_key_only_through_the_service(shop):
    statements = every_statement(shop, "StartExportFunctionRole")
    kms_actions = {a for s in statements for a in s["Action"] if a.startswith("kms:")}
    assert kms_actions == {"kms:CreateGrant"}


def test_with_a_bring_your_own_key_the_grant_is_on_that_key():
    key = f"arn:{PARTITION}:kms:{REGION}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    deployment = deploy("shop", ExistingKmsKeyArn=key)
    assert "ExportKey" not in deployment.resources
    statements = every_statement(deployment, "StartExportFunctionRole")
    (statement,) = [s for s in statements if "kms:CreateGrant" in s["Action"]]
    assert statement["Resource"] == [key]


def test_every_rule_dead_letter_queue_lets_exactly_its_rule_send(shop):
    policies = shop.of_type("AWS::SQS::QueuePolicy")
    targets = [
        (rule, target)
        for rule in shop.of_type("AWS::Events::Rule")
        for target in shop.properties(rule).get("Targets", [])
        if "DeadLetterConfig" in target
    ]
    assert targets, "the export-request rule has a dead-letter queue"
    for rule, target in targets:
        queue_arn = target["DeadLetterConfig"]["Arn"]
        (queue,) = [q for q in shop.of_type("AWS::SQS::Queue") if shop.arn(q) == queue_arn]
        queue_url = shop.ref(queue)
        statements = [
            statement
            for name in policies
            if queue_url in shop.properties(name)["Queues"]
            for statement in shop.properties(name)["PolicyDocument"]["Statement"]
        ]
        allowed = [
            s
            for s in statements
            if s["Effect"] == "Allow"
            and s["Principal"] == {"Service": "events.amazonaws.com"}
            and "sqs:SendMessage" in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
        ]
        assert len(allowed) == 1, f"{queue}: EventBridge cannot deliver {rule}'s undeliverable events"
        assert allowed[0]["Resource"] == queue_arn
        assert allowed[0]["Condition"] == {"ArnEquals": {"aws:SourceArn": shop.arn(rule)}}


def test_each_schedule_dead_letters_through_its_own_role(shop):
    schedules = shop.of_type("AWS::Scheduler::Schedule")
    assert len(schedules) == 3  # the export tick, the reconcile and the Iceberg maintenance
    for schedule in schedules:
        target = shop.properties(schedule)["Target"]
        role = next(name for name in shop.of_type("AWS::IAM::Role") if shop.arn(name) == target["RoleArn"])
        assert grants(role_statements(shop, role), "sqs:SendMessage", target["DeadLetterConfig"]["Arn"])


def test_the_notification_key_lets_only_this_accounts_alarms_in(shop):
    statements = shop.properties("NotificationKey")["KeyPolicy"]["Statement"]
    services = [s for s in statements if "Service" in s["Principal"]]
    assert services, "CloudWatch alarms must be able to publish to the encrypted alarm topic"
    for statement in services:
        principals = statement["Principal"]["Service"]
        assert (principals if isinstance(principals, list) else [principals]) == ["cloudwatch.amazonaws.com"]
        assert statement["Condition"]["StringEquals"]["aws:SourceAccount"] == ACCOUNT
    for statement in statements:
        if "AWS" in statement["Principal"]:
            assert statement["Principal"]["AWS"] == f"arn:{PARTITION}:iam::{ACCOUNT}:root"


def test_every_function_logs_to_its_own_log_group_with_the_configured_retention():
    deployment = deploy("shop", LogRetentionDays="90")
    log_groups = {
        deployment.properties(g)["LogGroupName"]: deployment.properties(g)
        for g in deployment.of_type("AWS::Logs::LogGroup")
    }
    for function in deployment.of_type("AWS::Lambda::Function"):
        expected = f"/aws/lambda/{deployment.physical_name(function)}"
        assert expected in log_groups, f"{function} would log to a group Lambda creates, kept forever"
        assert log_groups[expected]["RetentionInDays"] == "90"
    assert all(group.get("RetentionInDays") == "90" for group in log_groups.values())


def _actions(statements) -> set[str]:
    return {action for statement in statements for action in statement["Action"]}


def test_the_state_machine_may_run_the_indexing_distributed_map(shop):
    # Children are executions of the state machine itself; the ItemReader lists the bucket; children invoke CountRecords
    own = role_statements(shop, "ExportStateMachineRole")
    attached = attached_policy_statements(shop, "ExportStateMachineRole")
    machine = shop.arn("ExportStateMachine")
    assert grants(attached, "states:StartExecution", machine)
    assert _actions(attached) == {"states:StartExecution"}
    assert not grants(attached, "states:StartExecution", machine.replace(":stateMachine:", ":stateMachine:other-"))
    bucket = shop.arn("ExportBucket")
    assert grants(own, "s3:ListBucket", bucket) and not grants(own, "s3:GetObject", f"{bucket}/any")
    assert grants(own, "lambda:InvokeFunction", shop.arn("CountRecordsFunction"))


def test_count_records_reads_the_files_and_writes_only_manifest_parts(shop):
    statements = role_statements(shop, "CountRecordsFunctionRole")
    bucket = shop.arn("ExportBucket")
    folder = f"{bucket}/exports/{ACCOUNT}/shop/20261102T000000/20261101T000000-20261101T233000"
    assert grants(statements, "s3:GetObject", f"{folder}/_profile/5d1c")
    assert grants(statements, "s3:PutObject", f"{folder}/_profile.manifest.parts/1a2b.jsonl")
    assert not grants(statements, "s3:PutObject", f"{folder}/_profile/5d1c")
    assert not grants(statements, "s3:PutObject", f"{folder}/_profile.manifest.json")
    assert not grants(statements, "s3:ListBucket", bucket)  # its files come from the Map's listing
    assert _actions(statements) == {"s3:GetObject", "s3:PutObject", "kms:Decrypt", "kms:GenerateDataKey"}
    key = shop.arn("ExportKey")
    assert grants(statements, "kms:Decrypt", key) and grants(statements, "kms:GenerateDataKey", key)


def test_index_export_may_abort_the_manifest_upload_it_started(shop):
    statements = role_statements(shop, "IndexExportFunctionRole")
    manifest = f"{shop.arn('ExportBucket')}/exports/x/_profile.manifest.jsonl"
    for action in ("s3:PutObject", "s3:AbortMultipartUpload", "s3:GetObject"):
        assert grants(statements, action, manifest), action


@pytest.mark.parametrize(
    ("parameters", "count_records", "inline_max"),
    [({}, "true", ""), ({"CountRecords": "false", "InlineIndexMaxFiles": "250"}, "false", "250")],
    ids=["defaults", "counting off, threshold set"],
)
def test_record_counting_and_the_inline_threshold_reach_every_function(parameters, count_records, inline_max):
    deployment = deploy("shop", **parameters)
    for function in deployment.of_type("AWS::Lambda::Function"):
        variables = deployment.properties(function)["Environment"]["Variables"]
        assert (variables["COUNT_RECORDS"], variables["INLINE_INDEX_MAX_FILES"]) == (count_records, inline_max)


def test_the_partition_job_may_only_read_and_drop_partitions_of_the_stacks_own_tables(retaining):
    statements = role_statements(retaining, "ExpireRawPartitionsFunctionRole")
    glue = f"arn:{PARTITION}:glue:{REGION}:{ACCOUNT}"
    database = retaining.stack_name.replace("-", "_")
    assert _actions(statements) == {"glue:GetTable", "glue:GetPartitions", "glue:BatchDeletePartition"}
    for action in _actions(statements):
        assert grants(statements, action, f"{glue}:catalog")
        assert grants(statements, action, f"{glue}:database/{database}")
        assert grants(statements, action, f"{glue}:table/{database}/profile_versions")
        assert not grants(statements, action, f"{glue}:table/{database}/profile_current")  # a view
        assert not grants(statements, action, f"{glue}:table/other_stack/profile_versions")
        assert not grants(statements, action, f"{glue}:database/other_stack")


def test_the_retention_schedule_may_only_invoke_the_partition_job_and_dead_letter(retaining):
    target = retaining.properties("ExpireRawPartitionsFunctionDaily")["Target"]
    role = next(name for name in retaining.of_type("AWS::IAM::Role") if retaining.arn(name) == target["RoleArn"])
    statements = role_statements(retaining, role)
    assert target["Arn"] == retaining.arn("ExpireRawPartitionsFunction")
    assert grants(statements, "lambda:InvokeFunction", target["Arn"])
    assert grants(statements, "sqs:SendMessage", target["DeadLetterConfig"]["Arn"])
    assert _actions(statements) == {"lambda:InvokeFunction", "sqs:SendMessage"}


def test_maintenance_may_rewrite_only_the_current_state_tables_and_alert(shop):
    # OPTIMIZE and VACUUM run as the maintenance role: the workgroup, the stack's catalog, the
    # current-state folder and the results, the export key; a failed table is published to the topic.
    statements = role_statements(shop, "MaintenanceStateMachineRole")
    bucket = shop.arn("ExportBucket")
    database = "customer_profiles_export"
    glue = f"arn:{PARTITION}:glue:{REGION}:{ACCOUNT}"
    workgroup = f"arn:{PARTITION}:athena:{REGION}:{ACCOUNT}:workgroup/customer-profiles-export"
    for action in ("athena:StartQueryExecution", "athena:GetQueryExecution", "athena:StopQueryExecution"):
        assert grants(statements, action, workgroup), action
    assert not grants(statements, "athena:StartQueryExecution", workgroup.replace("/customer", "/other-customer"))
    for resource in (f"{glue}:catalog", f"{glue}:database/{database}", f"{glue}:table/{database}/profile_state"):
        for action in ("GetDatabase", "GetTable", "GetTables", "UpdateTable", "GetPartitions"):
            assert grants(statements, f"glue:{action}", resource), (action, resource)
    assert not grants(statements, "glue:UpdateTable", f"{glue}:table/other_database/profile_state")
    assert not grants(statements, "glue:CreateTable", f"{glue}:table/{database}/profile_state")
    table_file = f"{bucket}/exports/current-state/profile_state/data/1a2b.parquet"
    for action in ("s3:GetObject", "s3:PutObject", "s3:DeleteObject"):
        assert grants(statements, action, table_file), action
        assert grants(statements, action, f"{bucket}/athena-results/1a2b.csv"), action
    assert grants(statements, "s3:ListBucket", bucket)
    raw = f"{bucket}/exports/{ACCOUNT}/shop/20261102T000000/20261101T000000-20261101T233000/_profile/5d1c"
    assert not grants(statements, "s3:GetObject", raw) and not grants(statements, "s3:DeleteObject", raw)
    for key in ("ExportKey", "NotificationKey"):
        assert grants(statements, "kms:Decrypt", shop.arn(key)) and grants(
            statements, "kms:GenerateDataKey", shop.arn(key)
        )
    assert grants(statements, "sns:Publish", shop.ref("NotificationTopic"))
    assert not grants(statements, "sns:Publish", shop.ref("AlarmTopic"))
    # nothing else: no Lambda, no DynamoDB, no table creation
    services = {action.split(":")[0] for action in _actions(statements)}
    assert services == {"logs", "athena", "glue", "s3", "kms", "sns"}


def test_maintenance_logs_to_its_own_log_group():
    deployment = deploy("shop", LogRetentionDays="14")
    (destination,) = deployment.properties("MaintenanceStateMachine")["LoggingConfiguration"]["Destinations"]
    group = destination["CloudWatchLogsLogGroup"]["LogGroupArn"]
    assert group == deployment.arn("MaintenanceStateMachineLogGroup")
    assert deployment.properties("MaintenanceStateMachineLogGroup")["RetentionInDays"] == "14"
