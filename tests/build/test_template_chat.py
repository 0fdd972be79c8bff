"""Chat channels in the template: nothing unless asked; a Slack or Teams channel mapped to both topics,
its role and guardrail read-only on CloudWatch; half a channel refused before anything is created."""

from __future__ import annotations

import re

import pytest

from tests.build.cloudformation import PARTITION, deploy, role_statements

SLACK = {"ChatSlackWorkspaceId": "T012ABCDEF", "ChatSlackChannelId": "C012ABCDEF"}
TEAMS = {
    "ChatTeamsTeamId": "0b9f6b5c-5e1f-4c4a-9f5e-1a2b3c4d5e6f",
    "ChatTeamsTenantId": "6f5e4d3c-2b1a-4e9f-a5c4-c5b6f9b0e1d2",
    "ChatTeamsChannelId": "19%3ab0c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5%40thread.tacv2",
}
CHAT_RESOURCES = {"ChatChannelRole", "SlackChannel", "TeamsChannel"}


def test_without_chat_parameters_no_channel_and_no_role_exist():
    deployment = deploy("shop")
    assert not CHAT_RESOURCES & set(deployment.resources)
    assert deployment.refused_by_rules() == []


@pytest.mark.parametrize(
    ("parameters", "channel", "ids"),
    [
        (SLACK, "SlackChannel", {"SlackWorkspaceId": "T012ABCDEF", "SlackChannelId": "C012ABCDEF"}),
        (
            TEAMS,
            "TeamsChannel",
            {
                "TeamId": TEAMS["ChatTeamsTeamId"],
                "TeamsTenantId": TEAMS["ChatTeamsTenantId"],
                "TeamsChannelId": TEAMS["ChatTeamsChannelId"],
            },
        ),
    ],
    ids=["slack", "teams"],
)
def test_a_channel_gets_both_topics_a_read_only_guardrail_and_a_name_of_its_stack(parameters, channel, ids):
    # Given a stack with one chat channel
    deployment = deploy("shop", stack_name="cpx-prod", **parameters)

    # Then that channel alone exists, mapped to the notification and the alarm topics
    assert set(deployment.resources) & CHAT_RESOURCES == {"ChatChannelRole", channel}
    properties = deployment.properties(channel)
    assert {key: properties[key] for key in ids} == ids
    assert properties["SnsTopicArns"] == [deployment.arn("NotificationTopic"), deployment.arn("AlarmTopic")]
    # Left out, the guardrail would be AdministratorAccess: CloudWatch read only, nothing of the exports' data
    assert properties["GuardrailPolicies"] == [f"arn:{PARTITION}:iam::aws:policy/CloudWatchReadOnlyAccess"]
    assert properties["UserRoleRequired"] is False
    assert properties["IamRoleArn"] == deployment.arn("ChatChannelRole")
    assert properties["ConfigurationName"].startswith("cpx-prod-")
    assert re.fullmatch(r"[A-Za-z0-9-_]{1,128}", properties["ConfigurationName"])
    assert deployment.refused_by_rules() == []


def test_the_channel_role_is_for_chat_only_and_reads_cloudwatch_only():
    deployment = deploy("shop", **SLACK, **TEAMS)
    trust = deployment.properties("ChatChannelRole")["AssumeRolePolicyDocument"]["Statement"]
    assert [(s["Principal"], s["Action"]) for s in trust] == [({"Service": "chatbot.amazonaws.com"}, "sts:AssumeRole")]
    actions = {action for statement in role_statements(deployment, "ChatChannelRole") for action in statement["Action"]}
    assert actions == {"cloudwatch:Describe*", "cloudwatch:Get*", "cloudwatch:List*"}
    assert "ManagedPolicyArns" not in deployment.properties("ChatChannelRole")


@pytest.mark.parametrize(
    "parameters",
    [
        {"ChatSlackWorkspaceId": "T012ABCDEF"},
        {"ChatSlackChannelId": "C012ABCDEF"},
        {"ChatTeamsTeamId": TEAMS["ChatTeamsTeamId"]},
        {key: value for key, value in TEAMS.items() if key != "ChatTeamsChannelId"},
    ],
    ids=["slack workspace alone", "slack channel alone", "teams team alone", "teams without a channel"],
)
def test_half_a_channel_is_refused_before_anything_is_created(parameters):
    deployment = deploy("shop", **parameters)
    (refusal,) = deployment.refused_by_rules()
    assert "go together" in refusal
    assert not {"SlackChannel", "TeamsChannel"} & set(deployment.resources)


@pytest.mark.parametrize(
    ("parameter", "good", "bad"),
    [
        ("ChatSlackWorkspaceId", "T012ABCDEF", "t012-abc"),
        ("ChatSlackChannelId", "C012ABCDEF", "#on-call"),
        ("ChatTeamsTeamId", TEAMS["ChatTeamsTeamId"], "my-team"),
        ("ChatTeamsTenantId", TEAMS["ChatTeamsTenantId"], "contoso.onmicrosoft.com"),
        ("ChatTeamsChannelId", TEAMS["ChatTeamsChannelId"], "19:abc@thread.tacv2"),
    ],
)
def test_each_chat_parameter_takes_empty_or_the_id_the_service_takes(parameter, good, bad):
    pattern = deploy("shop").template["Parameters"][parameter]["AllowedPattern"]
    assert re.fullmatch(pattern, "") and re.fullmatch(pattern, good)
    assert not re.fullmatch(pattern, bad)
