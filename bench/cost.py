"""What one export costs at list prices, from what the offline run counted.

Prices: us-east-1, Lambda on arm64, no free tier, as published by AWS (USD). A run of one object
type is charged for its own state transitions (every state entered, retries included), its Lambda
invocations (requests, and GB-seconds at the function's memory for the median warm duration that
function had in the same run), and its S3 and DynamoDB requests (DynamoDB on demand, one request
unit per request: the pipeline's items are far below 1 KB written and 4 KB read). Not counted: the
execution's shared states (Plan, Notify: about 10 transitions per execution), CloudWatch Logs,
X-Ray, KMS requests (the bucket uses an S3 Bucket Key), storage, and the export itself.
"""

from __future__ import annotations

import math
from typing import Any

PRICE_REGION = "us-east-1"
PRICES_USD: dict[str, float] = {
    "step_functions_standard_per_state_transition": 0.000025,
    "lambda_arm64_per_gb_second": 0.0000133334,
    "lambda_per_request": 0.0000002,
    "s3_standard_per_put_copy_post_list_request": 0.000005,
    "s3_standard_per_get_and_other_request": 0.0000004,
    "dynamodb_on_demand_per_write_request_unit": 0.000000625,
    "dynamodb_on_demand_per_read_request_unit": 0.000000125,
}


def export_cost(export: dict[str, Any], functions: dict[str, Any]) -> dict[str, float]:
    """The cost of one export (a per-object-type record of `bench.polling`), itemised, in USD."""
    prices = PRICES_USD
    gb_seconds = 0.0
    invocations = 0
    for logical, count in export["lambda_invocations"].items():
        function = functions.get(logical) or {}
        median_ms = function.get("median_warm_ms") or 0.0
        billed_seconds = math.ceil(median_ms) / 1000  # Lambda bills whole milliseconds
        gb_seconds += count * billed_seconds * int(function.get("memory_mb", 128)) / 1024
        invocations += count
    requests = export["requests"]
    items = {
        "state_transitions": export["state_transitions"] * prices["step_functions_standard_per_state_transition"],
        "lambda_requests": invocations * prices["lambda_per_request"],
        "lambda_gb_seconds": gb_seconds * prices["lambda_arm64_per_gb_second"],
        "s3_requests": requests["s3_put"] * prices["s3_standard_per_put_copy_post_list_request"]
        + requests["s3_get"] * prices["s3_standard_per_get_and_other_request"],
        "dynamodb_requests": requests["dynamodb_write"] * prices["dynamodb_on_demand_per_write_request_unit"]
        + requests["dynamodb_read"] * prices["dynamodb_on_demand_per_read_request_unit"],
    }
    return {key: round(value, 8) for key, value in items.items()} | {
        "usd": round(sum(items.values()), 8),
        "lambda_gb_seconds_used": round(gb_seconds, 4),
    }
