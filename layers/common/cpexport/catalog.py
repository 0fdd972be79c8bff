"""The queryable catalog of the exports: names, schemas, partitions and the views' SQL (pure, no boto3).

One Glue database per stack; per configured object type a table over its exported files (every
version ever exported, one partition per export job) and a current-state view (the newest version
of each object); two stack-wide views that the saved queries read. `clients/glue.py` writes what
this module describes.

Assumptions (the service documents no file format): JSON Lines, one object per line; every object
carries `id` (its unique key) and `lastUpdated` (epoch milliseconds), as the local emulator writes
them. For the standard types the type's own key (`ProfileId`, `AssetId`, `OrderId`, `CaseId`)
equals `id` there; the views key on `id` because every type, custom ones included, has it.

The SQL is Athena's (Trino) dialect and stays inside what DuckDB also runs once the three Athena
functions it lacks (`from_unixtime`, `json_extract_scalar`, `element_at` on a map) are defined:
`local/athena` defines them and runs this very text.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cpexport.errors import ConfigurationError
from cpexport.models import render_utc
from cpexport.paths import parse_stamp

# ------------------------------------------------------------------------------------------ names
STACK_NAME = re.compile(r"^[a-zA-Z][-a-zA-Z0-9]{0,127}$")
OBJECT_TYPE = re.compile(r"^[a-zA-Z0-9_-]{1,255}$")
GLUE_NAME_LIMIT = 255
TABLE_SUFFIX = "_versions"
VIEW_SUFFIX = "_current"
STATE_SUFFIX = "_state"
DELETED_SUFFIX = "_deleted"
# Stack-wide views: they end in neither suffix, so no object type's table or view can take their names.
VERSIONS_BY_TYPE = "versions_by_type"
CURRENT_BY_TYPE = "current_by_type"
# A standard type whose name is a plain lower-case word keeps it: `_profile` -> `profile_versions`.
_PLAIN_STANDARD = re.compile(r"^_([a-z][a-z0-9]*)$")
_STANDARD_PREFIX = "standard_"
_CUSTOM_PREFIX = "custom_"


def database_name(stack_name: str) -> str:
    """The stack's Glue database: the stack name with `-` as `_` (what template.yaml computes).

    CloudFormation cannot lower-case, and Glue folds names to lower case when it stores them, so an
    upper-case stack name would give a database whose name differs from the ARNs the template grants:
    such stack names are refused.
    """
    if not STACK_NAME.match(stack_name):
        raise ConfigurationError(f"not a CloudFormation stack name: {stack_name!r}")
    if stack_name != stack_name.lower():
        raise ConfigurationError(
            f"stack {stack_name!r}: the export catalog needs a lower-case stack name (Glue stores database "
            "names in lower case, the template's IAM grants use the name as given)"
        )
    return stack_name.replace("-", "_")


def _escape(text: str) -> str:
    # A prefix code: `_` opens a two-character token, so every escaped text decodes one way only.
    out = []
    for char in text:
        if "a" <= char <= "z" or "0" <= char <= "9":
            out.append(char)
        elif char == "_":
            out.append("__")
        elif char == "-":
            out.append("_0")
        else:
            out.append("_" + char.lower())
    return "".join(out)


_UNESCAPED = {"_": "_", "0": "-"}


def _unescape(text: str) -> str:
    out, index = [], 0
    while index < len(text):
        char = text[index]
        if char != "_":
            out.append(char)
            index += 1
            continue
        token = text[index + 1 : index + 2]
        decoded = _UNESCAPED.get(token) or (token.upper() if "a" <= token <= "z" else None)
        if decoded is None:
            raise ValueError(f"not an escaped object type: {text!r}")
        out.append(decoded)
        index += 2
    return "".join(out)


def object_type_stem(object_type: str) -> str:
    """The part of every catalog name that stands for the object type (injective; see `object_type_of`).

    `_profile` -> `profile`; another standard type `_webAnalytics` -> `standard_web_analytics`;
    a custom type `Order-Line_2` -> `custom__order_0_line__2` (`_x` an upper-case X, `_0` a hyphen,
    `__` an underscore).
    """
    if not OBJECT_TYPE.match(object_type):
        raise ConfigurationError(f"not a Customer Profiles object type name: {object_type!r}")
    plain = _PLAIN_STANDARD.match(object_type)
    if plain:
        return plain[1]
    if object_type.startswith("_"):
        return _STANDARD_PREFIX + _escape(object_type[1:])
    return _CUSTOM_PREFIX + _escape(object_type)


def object_type_of(stem: str) -> str:
    """The object type a stem stands for (the inverse of `object_type_stem`)."""
    if stem.startswith(_STANDARD_PREFIX):
        return "_" + _unescape(stem[len(_STANDARD_PREFIX) :])
    if stem.startswith(_CUSTOM_PREFIX):
        return _unescape(stem[len(_CUSTOM_PREFIX) :])
    if re.fullmatch(r"[a-z][a-z0-9]*", stem):
        return "_" + stem
    raise ValueError(f"not an object type stem: {stem!r}")


def _fitted(name: str, object_type: str) -> str:
    if len(name) > GLUE_NAME_LIMIT:
        raise ConfigurationError(
            f"object type {object_type!r} gives the catalog name {name[:40]}... of {len(name)} characters; "
            f"Glue allows {GLUE_NAME_LIMIT}: use a shorter object type name"
        )
    return name


def table_name(object_type: str) -> str:
    """The Glue table over every exported version of an object type, e.g. `profile_versions`."""
    return _fitted(object_type_stem(object_type) + TABLE_SUFFIX, object_type)


def view_name(object_type: str) -> str:
    """The current-state view of an object type, e.g. `profile_current`."""
    return _fitted(object_type_stem(object_type) + VIEW_SUFFIX, object_type)


def state_table_name(object_type: str) -> str:
    """The Iceberg table of an object type's live objects, e.g. `profile_state` (see `current_state`)."""
    return _fitted(object_type_stem(object_type) + STATE_SUFFIX, object_type)


def deleted_table_name(object_type: str) -> str:
    """The Iceberg table of the objects reconciles found deleted, e.g. `profile_deleted`."""
    return _fitted(object_type_stem(object_type) + DELETED_SUFFIX, object_type)


def is_standard(object_type: str) -> bool:
    """Standard object types (AWS-defined, `_` first) have a documented schema; custom ones do not."""
    return object_type in STANDARD_COLUMNS


# ---------------------------------------------------------------------------------------- schemas
@dataclass(frozen=True)
class Column:
    """A Glue column: a lower-case name and a Hive type."""

    name: str
    type: str
    comment: str = ""

    def to_glue(self) -> dict[str, str]:
        """The Glue `Column` shape."""
        column = {"Name": self.name, "Type": self.type}
        if self.comment:
            column["Comment"] = self.comment
        return column


def _struct(*fields: str) -> str:
    return "struct<" + ",".join(f"{field}:string" for field in fields) + ">"


_ADDRESS_FIELDS = (
    "address1",
    "address2",
    "address3",
    "address4",
    "city",
    "county",
    "state",
    "province",
    "country",
    "postalcode",
)
ADDRESS = _struct(*_ADDRESS_FIELDS)
ORDER_ADDRESS = _struct("name", *_ADDRESS_FIELDS)
_CONTACT_PREFERENCE = _struct("keyname", "keyvalue", "profileid", "contacttype")
ATTRIBUTES = "map<string,string>"

# What every exported object carries (the emulator's assumption; see the module docstring).
ID = Column("id", "string", "unique key of the object (assumed: equals the type's own key)")
LAST_UPDATED = Column("lastupdated", "bigint", "when the object last changed, epoch milliseconds")
# The raw JSON line: the only column of a custom type's table, whose schema is not known.
LINE = Column("line", "string", "the exported JSON object, one line of the file")


def _strings(*names: str) -> list[Column]:
    return [Column(name, "string") for name in names]


STANDARD_COLUMNS: dict[str, list[Column]] = {
    # botocore customer-profiles `Profile` shape.
    "_profile": [
        ID,
        LAST_UPDATED,
        *_strings(
            "profileid",
            "accountnumber",
            "additionalinformation",
            "partytype",
            "businessname",
            "firstname",
            "middlename",
            "lastname",
            "birthdate",
            "gender",
            "phonenumber",
            "mobilephonenumber",
            "homephonenumber",
            "businessphonenumber",
            "emailaddress",
            "personalemailaddress",
            "businessemailaddress",
        ),
        Column("address", ADDRESS),
        Column("shippingaddress", ADDRESS),
        Column("mailingaddress", ADDRESS),
        Column("billingaddress", ADDRESS),
        Column("attributes", ATTRIBUTES),
        *_strings("partytypestring", "genderstring", "profiletype"),
        Column(
            "engagementpreferences",
            f"struct<phone:array<{_CONTACT_PREFERENCE}>,email:array<{_CONTACT_PREFERENCE}>>",
        ),
    ],
    # Admin guide, "Standard asset definition" (+ ProfileId, which links it to its profile).
    "_asset": [
        ID,
        LAST_UPDATED,
        *_strings(
            "assetid",
            "profileid",
            "assetname",
            "serialnumber",
            "modelnumber",
            "modelname",
            "productsku",
            "purchasedate",
            "usageenddate",
            "status",
            "price",
            "quantity",
            "description",
            "additionalinformation",
            "datasource",
        ),
        Column("attributes", ATTRIBUTES),
    ],
    # Admin guide, "Standard order object fields". OrderItem's fields are not listed: each item is
    # kept as its JSON text (read it with json_extract_scalar).
    "_order": [
        ID,
        LAST_UPDATED,
        *_strings(
            "orderid",
            "profileid",
            "customeremail",
            "customerphone",
            "createddate",
            "updateddate",
            "processeddate",
            "closeddate",
            "cancelleddate",
            "cancelreason",
            "name",
            "additionalinformation",
            "gateway",
            "status",
            "statuscode",
            "statusurl",
            "creditcardnumber",
            "creditcardcompany",
            "fulfillmentstatus",
            "totalprice",
            "totaltax",
            "totaldiscounts",
            "totalitemsprice",
            "totalshippingprice",
            "totaltipreceived",
            "currency",
            "totalweight",
        ),
        Column("billingaddress", ORDER_ADDRESS),
        Column("shippingaddress", ORDER_ADDRESS),
        Column("orderitems", "array<string>", "each item as its JSON text"),
        Column("attributes", ATTRIBUTES),
    ],
    # Admin guide, "Standard case object fields" (+ ProfileId).
    "_case": [
        ID,
        LAST_UPDATED,
        *_strings(
            "caseid",
            "profileid",
            "title",
            "summary",
            "status",
            "reason",
            "createdby",
            "createddate",
            "updateddate",
            "closeddate",
            "additionalinformation",
            "datasource",
        ),
        Column("attributes", ATTRIBUTES),
    ],
}

# Which export a row came from: one partition per export job, values in this order.
PARTITION_KEYS: tuple[Column, ...] = (
    Column("domain", "string", "Customer Profiles domain"),
    Column("window_start", "string", "start of the exported last-updated range, UTC, inclusive"),
    Column("window_end", "string", "end of the exported last-updated range, UTC, exclusive"),
    Column("requested_at", "string", "request time the service gave the job's folder, UTC"),
    Column("backfill", "string", "'true' for a backfill, 'false' for an incremental export"),
)
SOURCE_FILE = Column("source_file", "string", "the S3 file the row was read from")

JSON_SERDE = "org.openx.data.jsonserde.JsonSerDe"
# One string column per line: JSON escapes every control character, so the default field
# delimiter (byte 1) never occurs inside a line and each line is read whole.
RAW_LINE_SERDE = "org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe"
TEXT_INPUT_FORMAT = "org.apache.hadoop.mapred.TextInputFormat"
TEXT_OUTPUT_FORMAT = "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat"
OBJECT_TYPE_PARAMETER = "customer_profiles_object_type"


def data_columns(object_type: str) -> list[Column]:
    """The columns of an object type's table (the raw line for a custom type)."""
    return list(STANDARD_COLUMNS.get(object_type, [LINE]))


def table_input(object_type: str, location: str) -> dict[str, Any]:
    """The Glue TableInput of an object type's table; `location` is the exports' root folder."""
    if is_standard(object_type):
        serde = {
            "SerializationLibrary": JSON_SERDE,
            "Parameters": {"ignore.malformed.json": "true", "case.insensitive": "true", "serialization.format": "1"},
        }
        classification = "json"
    else:
        serde = {"SerializationLibrary": RAW_LINE_SERDE, "Parameters": {"serialization.format": "1"}}
        classification = "text"
    return {
        "Name": table_name(object_type),
        "Description": f"Every exported version of Customer Profiles {object_type} objects, one partition per export",
        "TableType": "EXTERNAL_TABLE",
        "Parameters": {"EXTERNAL": "TRUE", "classification": classification, OBJECT_TYPE_PARAMETER: object_type},
        "PartitionKeys": [key.to_glue() for key in PARTITION_KEYS],
        "StorageDescriptor": {
            "Columns": [column.to_glue() for column in data_columns(object_type)],
            "Location": location,
            "InputFormat": TEXT_INPUT_FORMAT,
            "OutputFormat": TEXT_OUTPUT_FORMAT,
            "SerdeInfo": serde,
        },
    }


def exports_root_location(bucket: str, export_prefix: str, account_id: str) -> str:
    """`s3://bucket/{prefix}/{account}/`: under it lie every domain's export folders."""
    head = f"{export_prefix.strip('/')}/" if export_prefix.strip("/") else ""
    return f"s3://{bucket}/{head}{account_id}/"


# ------------------------------------------------------------------------------------- partitions
def partition_values(
    domain_name: str, window_start: datetime, window_end: datetime, requested_at: datetime, backfill: bool
) -> list[str]:
    """A partition's values, in the order of PARTITION_KEYS (times as `YYYY-MM-DDTHH:MM:SSZ`)."""
    return [
        domain_name,
        render_utc(window_start),
        render_utc(window_end),
        render_utc(requested_at),
        "true" if backfill else "false",
    ]


def partition_input(table: Mapping[str, Any], values: Sequence[str], location: str) -> dict[str, Any]:
    """A Glue PartitionInput for `table` (a TableInput or GetTable answer): its format, at `location`."""
    keys = table.get("PartitionKeys") or []
    if len(values) != len(keys):
        raise ValueError(f"{len(values)} partition values for the {len(keys)} keys of {table.get('Name')}")
    if not location.startswith("s3://") or not location.endswith("/"):
        raise ValueError(f"a partition location is an s3:// folder ending in '/', not {location!r}")
    descriptor = table["StorageDescriptor"]
    return {
        "Values": list(values),
        "StorageDescriptor": {
            "Columns": descriptor["Columns"],
            "Location": location,
            "InputFormat": descriptor["InputFormat"],
            "OutputFormat": descriptor["OutputFormat"],
            "SerdeInfo": descriptor["SerdeInfo"],
        },
    }


@dataclass(frozen=True)
class ExportPartition:
    """Where one export job's files of one request folder are, and the partition values that say so."""

    object_type: str
    table: str
    values: list[str]
    location: str
    files: list[str]

    @property
    def name(self) -> str:
        """Hive's partition name, `domain=.../window_start=...`, as events and logs name it."""
        return "/".join(f"{key}={value}" for key, value in zip(PARTITION_KEY_NAMES, self.values, strict=True))


PARTITION_KEY_NAMES = tuple(key.name for key in PARTITION_KEYS)
_MANIFEST_SUFFIX = ".manifest.json"


def export_partitions(bucket: str, manifest_key: str, manifest: Mapping[str, Any]) -> list[ExportPartition]:
    """The partitions of an indexed export: one per request folder holding its files (normally one).

    The manifest lies beside the export folder (`.../{start}-{end}/{objectType}.manifest.json`);
    a job with no file still gets its (empty) folder as a partition, so every manifest has one. A
    submission that ran twice left files in two request folders: each gets a partition, and each
    partition's folder holds exactly the manifest's files of that folder.
    """
    object_type = str(manifest["objectType"])
    if not manifest_key.endswith(f"/{object_type}{_MANIFEST_SUFFIX}"):
        raise ValueError(f"{manifest_key!r} is not the manifest of object type {object_type!r}")
    window_folder = manifest_key[: -len(object_type + _MANIFEST_SUFFIX)]  # `{root}{stamp}/{start}-{end}/`
    range_name = window_folder.rstrip("/").rsplit("/", 1)[-1]
    root_and_stamp = window_folder[: -len(range_name) - 1]  # `{root}{stamp}/`
    manifest_stamp = root_and_stamp.rstrip("/").rsplit("/", 1)[-1]
    root = root_and_stamp[: -len(manifest_stamp) - 1]
    stamps = [str(stamp) for stamp in manifest.get("requestStamps") or []] or [manifest_stamp]
    folders = {stamp: f"{root}{stamp}/{range_name}/{object_type}/" for stamp in stamps}
    for file in manifest.get("files") or []:
        key = str(file["key"])
        if not any(key.startswith(folder) and "/" not in key[len(folder) :] for folder in folders.values()):
            raise ValueError(f"{key!r} lies in none of the export's folders {sorted(folders.values())}")
    window = manifest["window"]
    start, end = (datetime.fromisoformat(str(window[edge]).replace("Z", "+00:00")) for edge in ("start", "end"))
    table = table_name(object_type)
    return [
        ExportPartition(
            object_type=object_type,
            table=table,
            values=partition_values(
                str(manifest["domainName"]), start, end, parse_stamp(stamp), bool(manifest.get("backfill"))
            ),
            location=f"s3://{bucket}/{folder}",
            files=[str(f["key"]) for f in manifest.get("files") or [] if str(f["key"]).startswith(folder)],
        )
        for stamp, folder in folders.items()
    ]


# ------------------------------------------------------------------------------------------ views
# The SQL below is assembled from object types (OBJECT_TYPE: letters, digits, `_`, `-`) and a
# database name checked by `catalog_plan`: nothing else reaches it, hence bandit's B608 is waived.
def _current_sql(database: str, object_type: str) -> str:
    partitions = ", ".join(PARTITION_KEY_NAMES)
    if is_standard(object_type):
        columns = ", ".join(column.name for column in data_columns(object_type))
        parsed = f'SELECT {columns}, {partitions}, "$path" AS source_file FROM {database}.{table_name(object_type)}'  # nosec B608
    else:
        columns = "id, lastupdated, object"
        parsed = (
            "SELECT json_extract_scalar(line, '$.id') AS id, "  # nosec B608
            "TRY_CAST(json_extract_scalar(line, '$.lastUpdated') AS bigint) AS lastupdated, "
            f'line AS object, {partitions}, "$path" AS source_file FROM {database}.{table_name(object_type)}'
        )
    # The newest version per (domain, id); ties (the same version in two exports) go to the export
    # requested last, then the later window end, then the greater file path: deterministic.
    return (
        f"SELECT {columns}, {partitions}, source_file FROM (\n"  # nosec B608
        "  SELECT parsed.*, row_number() OVER (\n"
        "    PARTITION BY domain, id\n"
        "    ORDER BY lastupdated DESC, requested_at DESC, window_end DESC, source_file DESC\n"
        "  ) AS version_rank\n"
        f"  FROM ({parsed}) AS parsed\n"
        "  WHERE id IS NOT NULL AND lastupdated IS NOT NULL\n"
        ") AS ranked\n"
        "WHERE version_rank = 1"
    )


def current_view_columns(object_type: str) -> list[Column]:
    """The columns of an object type's current-state view."""
    if is_standard(object_type):
        head = data_columns(object_type)
    else:
        head = [ID, LAST_UPDATED, Column("object", "string", "the object's JSON, as exported")]
    return [*head, *PARTITION_KEYS, SOURCE_FILE]


_VERSIONS_BY_TYPE_COLUMNS = [
    Column("object_type", "string"),
    PARTITION_KEYS[0],
    ID,
    LAST_UPDATED,
    *PARTITION_KEYS[1:],
]
_CURRENT_BY_TYPE_COLUMNS = [Column("object_type", "string"), PARTITION_KEYS[0], ID, LAST_UPDATED]


def _versions_by_type_sql(database: str, object_types: Sequence[str]) -> str:
    selects = []
    for object_type in object_types:
        if is_standard(object_type):
            key = "id, lastupdated"
        else:
            key = (
                "json_extract_scalar(line, '$.id') AS id, "
                "TRY_CAST(json_extract_scalar(line, '$.lastUpdated') AS bigint) AS lastupdated"
            )
        selects.append(
            f"SELECT '{object_type}' AS object_type, domain, {key}, window_start, window_end, requested_at, backfill "  # nosec B608
            f"FROM {database}.{table_name(object_type)}"
        )
    return "\nUNION ALL\n".join(selects)


def _current_by_type_sql(database: str, object_types: Sequence[str]) -> str:
    # The live objects: the current-state tables, which reconciles keep free of deleted objects.
    return "\nUNION ALL\n".join(
        f"SELECT '{object_type}' AS object_type, domain, id, lastupdated FROM {database}.{state_table_name(object_type)}"  # nosec B608
        for object_type in object_types
    )


# ----------------------------------------------------------------------------- the saved queries
# template.yaml's AWS::Athena::NamedQuery resources hold these texts (a test compares them).
OBJECTS_CHANGED_PER_DAY = (
    "SELECT object_type, domain, CAST(from_unixtime(lastupdated / 1000) AS date) AS day, "
    "count(DISTINCT id) AS objects_changed\n"
    "FROM versions_by_type\n"
    "WHERE id IS NOT NULL AND lastupdated IS NOT NULL\n"
    "GROUP BY 1, 2, 3\n"
    "ORDER BY 3, 1, 2"
)
CURRENT_COUNT_BY_OBJECT_TYPE = (
    "SELECT object_type, domain, count(*) AS objects\nFROM current_by_type\nGROUP BY 1, 2\nORDER BY 1, 2"
)
SAVED_QUERIES = {
    "Objects changed per day": OBJECTS_CHANGED_PER_DAY,
    "Current count by object type": CURRENT_COUNT_BY_OBJECT_TYPE,
}


# ------------------------------------------------------------------------- Athena's view encoding
_PRESTO_VIEW = re.compile(r"^/\* Presto View: (?P<body>[A-Za-z0-9+/=]+) \*/$")


def _split_top_level(text: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    depth = 0
    for char in text:
        if char == "<":
            depth += 1
        elif char == ">":
            depth -= 1
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


def parse_hive_type(text: str) -> tuple[Any, ...]:
    """A Hive type string as a tree: ("struct", ((name, tree), ...)), ("map", k, v), ("array", t), (name,)."""
    text = text.strip()
    if text.startswith("struct<") and text.endswith(">"):
        fields = []
        for part in _split_top_level(text[len("struct<") : -1]):
            name, _, field_type = part.partition(":")
            fields.append((name.strip(), parse_hive_type(field_type)))
        return ("struct", tuple(fields))
    if text.startswith("map<") and text.endswith(">"):
        key, value = _split_top_level(text[len("map<") : -1])
        return ("map", parse_hive_type(key), parse_hive_type(value))
    if text.startswith("array<") and text.endswith(">"):
        return ("array", parse_hive_type(text[len("array<") : -1]))
    if not re.fullmatch(r"[a-z]+", text):
        raise ValueError(f"unsupported Hive type: {text!r}")
    return (text,)


_TRINO_PRIMITIVES = {
    "string": "varchar",
    "bigint": "bigint",
    "int": "integer",
    "double": "double",
    "boolean": "boolean",
}


def trino_type(tree: tuple[Any, ...]) -> str:
    """The Trino type Athena records in a view's definition for a parsed Hive type."""
    kind = tree[0]
    if kind == "struct":
        return "row(" + ", ".join(f"{name} {trino_type(field)}" for name, field in tree[1]) + ")"
    if kind == "map":
        return f"map({trino_type(tree[1])}, {trino_type(tree[2])})"
    if kind == "array":
        return f"array({trino_type(tree[1])})"
    return _TRINO_PRIMITIVES[kind]


def view_input(database: str, name: str, sql: str, columns: Sequence[Column], description: str) -> dict[str, Any]:
    """A Glue TableInput that Athena reads as a view: its SQL and columns in Athena's Presto view encoding."""
    definition = {
        "originalSql": sql,
        "catalog": "awsdatacatalog",
        "schema": database,
        "columns": [{"name": column.name, "type": trino_type(parse_hive_type(column.type))} for column in columns],
    }
    encoded = base64.b64encode(json.dumps(definition, separators=(",", ":")).encode()).decode()
    return {
        "Name": name,
        "Description": description,
        "TableType": "VIRTUAL_VIEW",
        "Parameters": {"presto_view": "true", "comment": "Presto View"},
        "ViewOriginalText": f"/* Presto View: {encoded} */",
        "ViewExpandedText": "/* Presto View */",
        "PartitionKeys": [],
        "StorageDescriptor": {"Columns": [column.to_glue() for column in columns], "SerdeInfo": {}},
    }


def view_definition(view_original_text: str) -> dict[str, Any]:
    """The decoded definition (`originalSql`, `schema`, `columns`) of an Athena view's ViewOriginalText."""
    match = _PRESTO_VIEW.match(view_original_text.strip())
    if match is None:
        raise ValueError("not an Athena view definition (/* Presto View: ... */)")
    decoded: dict[str, Any] = json.loads(base64.b64decode(match["body"]))
    return decoded


# ------------------------------------------------------------------------------ the whole catalog
@dataclass(frozen=True)
class CatalogPlan:
    """Every table and view of a stack's catalog, as Glue TableInputs (tables before views)."""

    database: str
    tables: list[dict[str, Any]]
    views: list[dict[str, Any]]


def catalog_plan(database: str, object_types: Sequence[str], location: str) -> CatalogPlan:
    """The tables and views for the configured object types; `location` from `exports_root_location`."""
    if not re.fullmatch(r"[a-z][a-z0-9_]{0,254}", database):
        raise ConfigurationError(f"not a catalog database name: {database!r}")
    types = list(dict.fromkeys(object_types))
    if not types:
        raise ConfigurationError("the catalog needs at least one object type")
    tables = [table_input(object_type, location) for object_type in types]
    views = [
        view_input(
            database,
            view_name(object_type),
            _current_sql(database, object_type),
            current_view_columns(object_type),
            f"The newest exported version of each {object_type} object, per domain",
        )
        for object_type in types
    ]
    views.append(
        view_input(
            database,
            VERSIONS_BY_TYPE,
            _versions_by_type_sql(database, types),
            _VERSIONS_BY_TYPE_COLUMNS,
            "Every exported version of every configured object type: key, last update and export",
        )
    )
    views.append(
        view_input(
            database,
            CURRENT_BY_TYPE,
            _current_by_type_sql(database, types),
            _CURRENT_BY_TYPE_COLUMNS,
            "The current version of every object of every configured object type",
        )
    )
    return CatalogPlan(database=database, tables=tables, views=views)
