"""Deterministic, realistic Customer Profiles objects for seeding the emulator.

Field names follow the Customer Profiles standard objects (``_profile``, ``_asset``, ``_order``,
``_case``). Every object also carries ``id`` (unique) and ``lastUpdated`` (epoch ms), the two
fields the emulator selects on. Contact data is fictional by construction: e-mail addresses use
``example.com``/``example.org`` and phone numbers the reserved 555-01xx range.
"""

from __future__ import annotations

import copy
import random
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

OBJECT_TYPES = ("_profile", "_asset", "_order", "_case")

_FIRST = (
    "Olivia", "Liam", "Emma", "Noah", "Amelia", "Oliver", "Sophia", "Elijah", "Mia", "Lucas", "Aisha",
    "Mateo", "Yuki", "Chen", "Priya", "Kwame", "Ingrid", "Diego", "Fatima", "Hiroshi", "Zoe", "Omar",
)  # fmt: skip
_LAST = (
    "Smith", "Johnson", "Garcia", "Martinez", "Nguyen", "Kim", "Patel", "Okafor", "Schmidt", "Rossi",
    "Dubois", "Silva", "Tanaka", "Cohen", "Kowalski", "Andersson", "Haddad", "Murphy", "Lopez", "Chen",
)  # fmt: skip
_CITIES = (
    ("Seattle", "King", "WA", "98101", "206"),
    ("Portland", "Multnomah", "OR", "97201", "503"),
    ("Austin", "Travis", "TX", "73301", "512"),
    ("Denver", "Denver", "CO", "80202", "303"),
    ("Chicago", "Cook", "IL", "60601", "312"),
    ("Boston", "Suffolk", "MA", "02108", "617"),
    ("Miami", "Miami-Dade", "FL", "33101", "305"),
    ("Phoenix", "Maricopa", "AZ", "85001", "602"),
)
_STREETS = ("Main St", "Oak Ave", "Pine St", "Maple Dr", "Cedar Ln", "Elm St", "Lakeview Rd", "Sunset Blvd")
_MAIL_DOMAINS = ("example.com", "example.org", "example.net")
_PRODUCTS = (
    ("Smart Thermostat", "ST-200", "Thermo Pro"),
    ("Wireless Router", "WR-AX6", "NetWave AX"),
    ("Robot Vacuum", "RV-90", "CleanBot 9"),
    ("Security Camera", "SC-4K", "WatchEye 4K"),
    ("Water Heater", "WH-50G", "HeatMax 50"),
    ("Solar Inverter", "SI-7K", "SunFlow 7"),
)
_CASE_TITLES = (
    "Device will not power on",
    "Billing discrepancy on last invoice",
    "Request to change delivery address",
    "Warranty claim",
    "Unable to log in to account",
    "Product arrived damaged",
)


def _uid(rng: random.Random) -> uuid.UUID:
    return uuid.UUID(int=rng.getrandbits(128), version=4)


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _phone(rng: random.Random, area: str) -> str:
    return f"+1{area}55501{rng.randrange(100):02d}"


def _address(rng: random.Random) -> dict[str, str]:
    city, county, state, postal, _ = rng.choice(_CITIES)
    return {
        "Address1": f"{rng.randrange(10, 9999)} {rng.choice(_STREETS)}",
        "Address2": rng.choice(("", f"Apt {rng.randrange(1, 400)}", f"Suite {rng.randrange(100, 900)}")),
        "City": city,
        "County": county,
        "State": state,
        "Country": "US",
        "PostalCode": postal,
    }


def _profile(rng: random.Random, object_id: str, last_updated: int, _: Sequence[str]) -> dict[str, Any]:
    first, last = rng.choice(_FIRST), rng.choice(_LAST)
    city = rng.choice(_CITIES)
    address = _address(rng)
    birth = datetime(1950, 1, 1, tzinfo=UTC) + timedelta(days=rng.randrange(0, 365 * 55))
    handle = f"{first}.{last}{rng.randrange(1, 999)}".lower()
    return {
        "id": object_id,
        "lastUpdated": last_updated,
        "ProfileId": object_id,
        "AccountNumber": f"ACC-{rng.randrange(10**7, 10**8)}",
        "PartyType": "INDIVIDUAL",
        "FirstName": first,
        "MiddleName": rng.choice(("", "A.", "J.", "M.", "R.")),
        "LastName": last,
        "BirthDate": birth.strftime("%Y-%m-%d"),
        "Gender": rng.choice(("FEMALE", "MALE", "UNSPECIFIED")),
        "PhoneNumber": _phone(rng, city[4]),
        "MobilePhoneNumber": _phone(rng, city[4]),
        "EmailAddress": f"{handle}@{rng.choice(_MAIL_DOMAINS)}",
        "PersonalEmailAddress": f"{handle}.home@{rng.choice(_MAIL_DOMAINS)}",
        "Address": address,
        "ShippingAddress": address,
        "MailingAddress": address,
        "BillingAddress": _address(rng) if rng.random() < 0.2 else address,
        "Attributes": {
            "loyaltyTier": rng.choice(("bronze", "silver", "gold", "platinum")),
            "preferredChannel": rng.choice(("voice", "chat", "email", "sms")),
        },
    }


def _asset(rng: random.Random, object_id: str, last_updated: int, profile_ids: Sequence[str]) -> dict[str, Any]:
    name, model_number, model_name = rng.choice(_PRODUCTS)
    purchase = datetime.fromtimestamp(last_updated / 1000, tz=UTC) - timedelta(days=rng.randrange(1, 900))
    return {
        "id": object_id,
        "lastUpdated": last_updated,
        "AssetId": object_id,
        "ProfileId": rng.choice(profile_ids) if profile_ids else _uid(rng).hex,
        "AssetName": name,
        "SerialNumber": f"SN{rng.randrange(10**9, 10**10)}",
        "ModelNumber": model_number,
        "ModelName": model_name,
        "ProductSKU": f"SKU-{model_number}-{rng.choice(('BLK', 'WHT', 'GRY'))}",
        "PurchaseDate": purchase.strftime("%Y-%m-%d"),
        "UsageEndDate": (purchase + timedelta(days=365 * 3)).strftime("%Y-%m-%d"),
        "Status": rng.choice(("ACTIVE", "ACTIVE", "ACTIVE", "RETURNED", "EXPIRED")),
        "Price": f"{rng.randrange(49, 1999)}.{rng.randrange(100):02d}",
        "Quantity": str(rng.randrange(1, 4)),
        "Description": f"{model_name} {name.lower()}",
        "DataSource": "ERP",
        "Attributes": {"warranty": rng.choice(("standard", "extended"))},
    }


def _order(rng: random.Random, object_id: str, last_updated: int, profile_ids: Sequence[str]) -> dict[str, Any]:
    created = last_updated - rng.randrange(0, 7 * 86_400_000)
    items = rng.randrange(1, 4)
    subtotal = sum(rng.randrange(10, 400) for _ in range(items))
    tax = round(subtotal * 0.08, 2)
    first, last = rng.choice(_FIRST), rng.choice(_LAST)
    address = _address(rng)
    return {
        "id": object_id,
        "lastUpdated": last_updated,
        "OrderId": object_id,
        "ProfileId": rng.choice(profile_ids) if profile_ids else _uid(rng).hex,
        "CustomerEmail": f"{first}.{last}@{rng.choice(_MAIL_DOMAINS)}".lower(),
        "CustomerPhone": _phone(rng, rng.choice(_CITIES)[4]),
        "CreatedDate": _iso(created),
        "UpdatedDate": _iso(last_updated),
        "Name": f"#{rng.randrange(100000, 999999)}",
        "Gateway": rng.choice(("stripe", "paypal", "adyen")),
        "Status": rng.choice(("PENDING", "PAID", "SHIPPED", "DELIVERED")),
        "StatusCode": "ACTIVATED",
        "CreditCardNumber": f"{rng.randrange(10000):04d}",
        "CreditCardCompany": rng.choice(("Visa", "Mastercard", "Amex")),
        "FulfillmentStatus": rng.choice(("UNFULFILLED", "PARTIAL", "FULFILLED")),
        "TotalPrice": f"{subtotal + tax:.2f}",
        "TotalTax": f"{tax:.2f}",
        "TotalItemsPrice": f"{subtotal:.2f}",
        "Currency": "USD",
        "BillingAddress": {"Name": f"{first} {last}", **address},
        "ShippingAddress": {"Name": f"{first} {last}", **address},
        "Attributes": {"channel": rng.choice(("web", "mobile", "store"))},
    }


def _case(rng: random.Random, object_id: str, last_updated: int, profile_ids: Sequence[str]) -> dict[str, Any]:
    created = last_updated - rng.randrange(0, 3 * 86_400_000)
    status = rng.choice(("OPEN", "OPEN", "IN_PROGRESS", "CLOSED"))
    case: dict[str, Any] = {
        "id": object_id,
        "lastUpdated": last_updated,
        "CaseId": object_id,
        "ProfileId": rng.choice(profile_ids) if profile_ids else _uid(rng).hex,
        "Title": rng.choice(_CASE_TITLES),
        "Summary": "Customer contacted support; details captured by the agent.",
        "Status": status,
        "Reason": rng.choice(("PRODUCT", "BILLING", "SHIPPING", "ACCOUNT")),
        "CreatedBy": f"agent-{rng.randrange(1, 60):03d}",
        "CreatedDate": _iso(created),
        "UpdatedDate": _iso(last_updated),
        "DataSource": "Amazon Connect Cases",
        "Attributes": {"priority": rng.choice(("low", "medium", "high"))},
    }
    if status == "CLOSED":
        case["ClosedDate"] = _iso(last_updated)
    return case


_BUILDERS: dict[str, Callable[[random.Random, str, int, Sequence[str]], dict[str, Any]]] = {
    "_profile": _profile,
    "_asset": _asset,
    "_order": _order,
    "_case": _case,
}


def generate(
    object_type: str,
    count: int,
    start_ms: int,
    end_ms: int,
    seed: int,
    *,
    profile_ids: Sequence[str] = (),
    duplicate_rate: float = 0.0,
    duplicates_of: Sequence[dict[str, Any]] = (),
) -> list[dict[str, Any]]:
    """Return ``count`` objects of ``object_type`` with unique ``id`` and ``lastUpdated`` in [start_ms, end_ms).

    Same arguments, same objects. ``profile_ids`` links assets, orders and cases to existing profiles.
    ``duplicate_rate``: the share of new profiles that are duplicates of a person already known (one of
    ``duplicates_of`` or an earlier profile of this batch): same e-mail, phone or both, as identity
    resolution would match them (see ``lifecycle.duplicate_groups``).
    """
    if not 0.0 <= duplicate_rate <= 1.0:
        raise ValueError(f"duplicate_rate must be between 0 and 1 (got {duplicate_rate})")
    if object_type not in _BUILDERS:
        raise ValueError(f"object_type must be one of {OBJECT_TYPES} (got {object_type!r})")
    if count < 0:
        raise ValueError("count must be >= 0")
    if end_ms <= start_ms:
        raise ValueError(f"end_ms ({end_ms}) must be greater than start_ms ({start_ms})")
    rng = random.Random(f"{object_type}:{seed}")
    build = _BUILDERS[object_type]
    objects: list[dict[str, Any]] = []
    seen: set[str] = set()
    while len(objects) < count:
        object_id = _uid(rng).hex
        if object_id in seen:
            continue
        seen.add(object_id)
        objects.append(build(rng, object_id, rng.randrange(start_ms, end_ms), profile_ids))
    if object_type == "_profile" and duplicate_rate > 0:
        _make_duplicates(objects, duplicates_of, duplicate_rate, random.Random(f"duplicates:{seed}"))
    return objects


def _make_duplicates(
    profiles: list[dict[str, Any]], known: Sequence[dict[str, Any]], rate: float, rng: random.Random
) -> None:
    """Give a share ``rate`` of ``profiles`` the e-mail and/or phone of a known or earlier profile.

    Its own generator, so that asking for duplicates leaves every other field as it was without them.
    """
    for i, duplicate in enumerate(profiles):
        pool = [*known, *profiles[:i]]
        if not pool or rng.random() >= rate:
            continue
        original = rng.choice(pool)
        shared = rng.choice((("EmailAddress",), ("PhoneNumber",), ("EmailAddress", "PhoneNumber")))
        for name in shared:
            if original.get(name):
                duplicate[name] = original[name]
        duplicate["FirstName"], duplicate["LastName"] = original.get("FirstName"), original.get("LastName")


def _change(rng: random.Random, obj: dict[str, Any], at_ms: int) -> None:
    if "ProfileId" in obj and obj.get("id") == obj.get("ProfileId"):
        city = rng.choice(_CITIES)
        obj["PhoneNumber"] = _phone(rng, city[4])
        obj["Address"] = _address(rng)
        obj["ShippingAddress"] = obj["Address"]
        attributes = dict(obj.get("Attributes") or {})
        attributes["loyaltyTier"] = rng.choice(("bronze", "silver", "gold", "platinum"))
        obj["Attributes"] = attributes
    elif "AssetId" in obj:
        obj["Status"] = rng.choice(("ACTIVE", "RETURNED", "EXPIRED"))
        obj["Quantity"] = str(rng.randrange(1, 4))
    elif "OrderId" in obj:
        obj["Status"] = rng.choice(("PAID", "SHIPPED", "DELIVERED", "CANCELLED"))
        obj["FulfillmentStatus"] = rng.choice(("PARTIAL", "FULFILLED"))
        obj["UpdatedDate"] = _iso(at_ms)
    elif "CaseId" in obj:
        obj["Status"] = rng.choice(("IN_PROGRESS", "CLOSED"))
        obj["UpdatedDate"] = _iso(at_ms)
        if obj["Status"] == "CLOSED":
            obj["ClosedDate"] = _iso(at_ms)
    else:
        obj["revision"] = int(obj.get("revision", 0)) + 1


def mutate(
    objects: Sequence[dict[str, Any]], count: int, at_ms: int, seed: int, *, spread_ms: int = 0
) -> list[dict[str, Any]]:
    """Return updated copies of ``count`` objects picked deterministically, with ``lastUpdated`` = ``at_ms``.

    With ``spread_ms`` > 0 the new ``lastUpdated`` values fall in [at_ms, at_ms + spread_ms). The
    input objects are not modified; seed the returned copies to upsert them by id.
    """
    if count < 0:
        raise ValueError("count must be >= 0")
    rng = random.Random(f"mutate:{seed}")
    picked = rng.sample(list(objects), min(count, len(objects)))
    updated = []
    for original in picked:
        obj = copy.deepcopy(original)
        new_ms = at_ms + (rng.randrange(spread_ms) if spread_ms > 0 else 0)
        _change(rng, obj, new_ms)
        obj["lastUpdated"] = new_ms
        updated.append(obj)
    return updated
