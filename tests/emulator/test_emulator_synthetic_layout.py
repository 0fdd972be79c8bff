"""Synthetic Customer Profiles data and the export key layout helpers."""

from __future__ import annotations

import re
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from local.emulator.layout import (
    export_folder,
    format_timestamp,
    new_file_key,
    parse_destination,
    parse_export_key,
    parse_timestamp,
    range_folder,
)
from local.emulator.synthetic import OBJECT_TYPES, generate, mutate

START, END = 1_717_200_000_000, 1_717_800_000_000

# Field names of the Customer Profiles standard objects (admin guide, standard-*-definition pages).
STANDARD_FIELDS = {
    "_profile": {
        "ProfileId", "AccountNumber", "AdditionalInformation", "PartyType", "BusinessName", "FirstName",
        "MiddleName", "LastName", "BirthDate", "Gender", "PhoneNumber", "MobilePhoneNumber", "HomePhoneNumber",
        "BusinessPhoneNumber", "EmailAddress", "PersonalEmailAddress", "BusinessEmailAddress", "Address",
        "ShippingAddress", "MailingAddress", "BillingAddress", "Attributes",
    },
    "_asset": {
        "AssetId", "ProfileId", "AssetName", "SerialNumber", "ModelNumber", "ModelName", "ProductSKU",
        "PurchaseDate", "UsageEndDate", "Status", "Price", "Quantity", "Description", "AdditionalInformation",
        "DataSource", "Attributes",
    },
    "_order": {
        "OrderId", "ProfileId", "CustomerEmail", "CustomerPhone", "CreatedDate", "UpdatedDate", "ProcessedDate",
        "ClosedDate", "CancelledDate", "CancelReason", "Name", "AdditionalInformation", "Gateway", "Status",
        "StatusCode", "StatusUrl", "CreditCardNumber", "CreditCardCompany", "FulfillmentStatus", "TotalPrice",
        "TotalTax", "TotalDiscounts", "TotalItemsPrice", "TotalShippingPrice", "TotalTipReceived", "Currency",
        "TotalWeight", "BillingAddress", "ShippingAddress", "OrderItems", "Attributes",
    },
    "_case": {
        "CaseId", "ProfileId", "Title", "Summary", "Status", "Reason", "CreatedBy", "CreatedDate", "UpdatedDate",
        "ClosedDate", "AdditionalInformation", "DataSource", "Attributes",
    },
}  # fmt: skip
ADDRESS_FIELDS = {"Address1", "Address2", "Address3", "Address4", "City", "County", "State", "Province", "Country"}
ADDRESS_FIELDS |= {"PostalCode", "Name"}


@pytest.mark.parametrize("object_type", OBJECT_TYPES)
def test_generate_is_deterministic_unique_and_in_range(object_type: str) -> None:
    # Given the same arguments twice and another seed
    first = generate(object_type, 200, START, END, seed=1)
    again = generate(object_type, 200, START, END, seed=1)
    other = generate(object_type, 200, START, END, seed=2)

    # Then the same objects come back, the other seed differs, ids are unique and lastUpdated in range
    assert first == again and first != other
    assert len({o["id"] for o in first}) == 200
    assert all(START <= o["lastUpdated"] < END for o in first)
    # And the fields are the standard object's (plus id and lastUpdated)
    for obj in first:
        assert set(obj) - {"id", "lastUpdated"} <= STANDARD_FIELDS[object_type]
        for key in ("Address", "ShippingAddress", "MailingAddress", "BillingAddress"):
            if key in obj:
                assert set(obj[key]) <= ADDRESS_FIELDS


def test_profiles_look_real_but_use_reserved_contact_data() -> None:
    profiles = generate("_profile", 50, START, END, seed=3)
    for p in profiles:
        assert p["ProfileId"] == p["id"] and re.fullmatch(r"[0-9a-f]{32}", p["id"])
        assert p["FirstName"] and p["LastName"] and p["AccountNumber"].startswith("ACC-")
        assert re.fullmatch(r"[a-z.0-9]+@example\.(com|org|net)", p["EmailAddress"])
        assert re.fullmatch(r"\+1\d{3}55501\d{2}", p["PhoneNumber"])
        assert {"Address1", "City", "State", "PostalCode", "Country"} <= set(p["Address"])


def test_related_objects_point_at_given_profiles() -> None:
    profile_ids = [p["id"] for p in generate("_profile", 5, START, END, seed=1)]
    for object_type in ("_asset", "_order", "_case"):
        assert {o["ProfileId"] for o in generate(object_type, 30, START, END, seed=1, profile_ids=profile_ids)} <= set(
            profile_ids
        )


def test_generate_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="object_type"):
        generate("_unknown", 1, START, END, seed=1)
    with pytest.raises(ValueError, match="end_ms"):
        generate("_profile", 1, END, START, seed=1)


@pytest.mark.parametrize("object_type", OBJECT_TYPES)
def test_mutate_returns_changed_copies(object_type: str) -> None:
    # Given objects and a mutation at a later time
    objects = generate(object_type, 20, START, END, seed=4)
    snapshot = [dict(o) for o in objects]
    changed = mutate(objects, 5, END + 1000, seed=9)

    # Then five copies of existing ids, with the new lastUpdated, deterministic, inputs untouched
    assert len(changed) == 5 and {o["id"] for o in changed} <= {o["id"] for o in objects}
    assert all(o["lastUpdated"] == END + 1000 for o in changed)
    assert changed == mutate(objects, 5, END + 1000, seed=9)
    assert objects == snapshot
    originals = {o["id"]: o for o in objects}
    assert any(
        {k: v for k, v in o.items() if k != "lastUpdated"}
        != {k: v for k, v in originals[o["id"]].items() if k != "lastUpdated"}
        for o in changed
    )


def test_mutate_spread_and_count_bounds() -> None:
    objects = generate("_profile", 3, START, END, seed=1)
    changed = mutate(objects, 10, END, seed=1, spread_ms=1000)
    assert len(changed) == 3 and all(END <= o["lastUpdated"] < END + 1000 for o in changed)


# ----------------------------------------------------------------- layout


def test_documented_example_layout() -> None:
    # The docs' example: 20240607T175023 request, 20240101T235959-20240430T235959 range
    folder = export_folder(
        "", "123456789012", "my-domain-pdx", 1_717_782_623_000, 1_704_153_599_000, 1_714_521_599_000, "_profile"
    )
    assert folder == "123456789012/my-domain-pdx/20240607T175023/20240101T235959-20240430T235959/_profile"
    key = new_file_key(folder)
    assert uuid.UUID(key.rsplit("/", 1)[1]).version == 4
    parsed = parse_export_key(key)
    assert (parsed.prefix, parsed.domain, parsed.object_type) == ("", "my-domain-pdx", "_profile")
    assert parsed.start_ms == 1_704_153_599_000 and parsed.end_ms == 1_714_521_599_000


def test_prefix_and_range_folder() -> None:
    assert range_folder(0, 1000) == "19700101T000000-19700101T000001"
    folder = export_folder("/a/b/", "123456789012", "d", 0, 0, 1000, "_asset")
    assert folder.startswith("a/b/123456789012/d/")
    assert parse_export_key(new_file_key(folder)).prefix == "a/b"


@pytest.mark.parametrize(
    ("uri", "expected"),
    [("s3://bucket-1", ("bucket-1", "")), ("s3://bucket-1/", ("bucket-1", "")), ("s3://b.c-d/x/y/", ("b.c-d", "x/y"))],
)
def test_parse_destination(uri: str, expected: tuple[str, str]) -> None:
    assert parse_destination(uri) == expected


@pytest.mark.parametrize("uri", ["http://bucket", "s3://BUCKET", "s3://ab", "s3://a..b", "s3://bucket/x//y"])
def test_parse_destination_rejects(uri: str) -> None:
    with pytest.raises(ValueError, match="DestinationURI"):
        parse_destination(uri)


def test_parse_export_key_rejects_other_keys() -> None:
    for key in ("x/y", "123456789012/d/20240101T000000/bad/_profile/" + str(uuid.uuid4())):
        with pytest.raises(ValueError):
            parse_export_key(key)


@given(st.integers(min_value=0, max_value=4_102_444_800_000))
def test_timestamps_round_trip_to_the_second(ms: int) -> None:
    text = format_timestamp(ms)
    assert re.fullmatch(r"\d{8}T\d{6}", text)
    assert parse_timestamp(text) == ms - ms % 1000
