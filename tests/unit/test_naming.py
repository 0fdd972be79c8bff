"""Data integration names: one name per (stack, domain, object type), always within the service's pattern."""

import re

from cpexport.exports import data_integration_name
from hypothesis import given
from hypothesis import strategies as st

STACK = st.from_regex(r"[a-zA-Z][-a-zA-Z0-9]{0,127}", fullmatch=True)
DOMAIN = st.from_regex(r"[a-zA-Z0-9_-]{1,64}", fullmatch=True)
OBJECT_TYPE = st.from_regex(r"[a-zA-Z0-9_-]{1,255}", fullmatch=True)
SERVICE_NAME = re.compile(r"^[a-zA-Z0-9/._-]{1,255}$")  # CreateDataIntegration's Name


def test_names_that_used_to_collide_differ():
    assert data_integration_name("cpx", "acme", "eu-x") != data_integration_name("cpx", "acme-eu", "x")
    assert data_integration_name("cpx", "a-b", "c") != data_integration_name("cpx-a", "b", "c")


@given(STACK, DOMAIN, OBJECT_TYPE, STACK, DOMAIN, OBJECT_TYPE)
def test_names_are_injective_and_valid(stack1, domain1, type1, stack2, domain2, type2):
    first = data_integration_name(stack1, domain1, type1)
    second = data_integration_name(stack2, domain2, type2)
    assert SERVICE_NAME.match(first) and SERVICE_NAME.match(second)
    if (stack1, domain1, type1) != (stack2, domain2, type2):
        assert first != second


def test_a_name_over_the_limit_keeps_a_digest_of_the_whole():
    long_type = "t" * 255
    name = data_integration_name("s" * 128, "d" * 64, long_type)
    assert len(name) == 255
    assert name != data_integration_name("s" * 128, "d" * 64, long_type[:-1] + "u")
    assert name.count(".") == 3  # two separators and the digest's: no untruncated name has three
