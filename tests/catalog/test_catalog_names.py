"""Catalog names: injective from the object type, valid for Athena without quoting, within Glue's limits."""

from __future__ import annotations

import re

import pytest
from cpexport.catalog import (
    CURRENT_BY_TYPE,
    GLUE_NAME_LIMIT,
    VERSIONS_BY_TYPE,
    database_name,
    object_type_of,
    object_type_stem,
    table_name,
    view_name,
)
from cpexport.errors import ConfigurationError
from hypothesis import given
from hypothesis import strategies as st

ATHENA_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
# What Customer Profiles accepts as an object type name.
object_types = st.from_regex(r"\A[a-zA-Z0-9_-]{1,60}\Z")


@given(object_types)
def test_the_object_type_can_be_read_back_from_its_names(object_type):
    # The inverse exists, so no two object types share a table or a view.
    assert object_type_of(object_type_stem(object_type)) == object_type
    assert object_type_of(table_name(object_type).removesuffix("_versions")) == object_type
    assert object_type_of(view_name(object_type).removesuffix("_current")) == object_type


@given(object_types, object_types)
def test_two_object_types_never_share_a_name(first, second):
    names = {table_name(first), view_name(first), table_name(second), view_name(second)}
    assert len(names) == (2 if first == second else 4)
    assert not names & {VERSIONS_BY_TYPE, CURRENT_BY_TYPE}


@given(object_types)
def test_names_are_lower_case_words_athena_reads_without_quotes(object_type):
    for name in (table_name(object_type), view_name(object_type)):
        assert ATHENA_NAME.match(name), name
        assert len(name) <= GLUE_NAME_LIMIT


@pytest.mark.parametrize(
    ("object_type", "table", "view"),
    [
        ("_profile", "profile_versions", "profile_current"),
        ("_order", "order_versions", "order_current"),
        ("_case", "case_versions", "case_current"),
        ("_webAnalytics", "standard_web_analytics_versions", "standard_web_analytics_current"),
        ("profile", "custom_profile_versions", "custom_profile_current"),
        ("Order-Line_2", "custom__order_0_line__2_versions", "custom__order_0_line__2_current"),
    ],
)
def test_documented_examples(object_type, table, view):
    assert (table_name(object_type), view_name(object_type)) == (table, view)


def test_an_object_type_whose_name_would_not_fit_glue_is_refused_with_the_reason():
    with pytest.raises(ConfigurationError, match="Glue allows 255"):
        table_name("A" * 200)  # every capital takes two characters
    with pytest.raises(ConfigurationError, match="not a Customer Profiles object type"):
        table_name("bad.type")


@pytest.mark.parametrize(
    ("stack", "database"),
    [
        ("customer-profiles-export", "customer_profiles_export"),
        ("customer-profiles-export-prod", "customer_profiles_export_prod"),
        ("s" + "-x" * 63 + "z", "s" + "_x" * 63 + "z"),
    ],
)
def test_the_database_is_the_stack_name_with_underscores(stack, database):
    assert database_name(stack) == database


def test_an_upper_case_stack_name_is_refused_because_glue_would_fold_it():
    with pytest.raises(ConfigurationError, match="lower-case stack name"):
        database_name("Customer-Profiles")
