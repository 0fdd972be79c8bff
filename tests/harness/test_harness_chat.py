"""A chat channel (Amazon Q Developer in chat applications) offline: refused with a reason, not skipped.

moto's CloudFormation has no `AWS::Chatbot::*` and would skip the resource without a word; nothing
offline can render a message in Slack or Teams. A stack without a channel deploys as usual.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from local.harness import OfflineStack
from local.harness.provisioners import ResourceRefused

CHAT_TEMPLATE = Path(__file__).parent / "fixtures" / "chat.yaml"


def _stack_names(stack: OfflineStack) -> set[str]:
    summaries = stack.client("cloudformation").list_stacks()["StackSummaries"]
    return {s["StackName"] for s in summaries if s["StackStatus"] != "DELETE_COMPLETE"}


def test_a_stack_that_would_configure_a_chat_channel_is_refused_and_rolled_back(stack: OfflineStack, unique: str):
    # When a stack's parameters create a Slack channel configuration
    with pytest.raises(ResourceRefused) as refused:
        stack.add_stack(f"chat-{unique}", {"SlackChannelId": "C012ABCDEF"}, template_path=CHAT_TEMPLATE)

    # Then the deployment says why and what to do, and nothing of the stack is left
    message = str(refused.value)
    assert "Channel (AWS::Chatbot::SlackChannelConfiguration): not modelled offline" in message
    assert "deploy without the parameters that create it" in message
    assert f"chat-{unique}" not in _stack_names(stack)


def test_without_a_channel_the_same_template_deploys(stack: OfflineStack, unique: str):
    deployed = stack.add_stack(f"nochat-{unique}", {}, template_path=CHAT_TEMPLATE)
    try:
        assert deployed.outputs["TopicArn"].startswith("arn:aws:sns:")
        assert "Channel" not in deployed.resources
    finally:
        stack.remove_stack(deployed)
