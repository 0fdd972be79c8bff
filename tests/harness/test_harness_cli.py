"""`python -m local serve` prints one JSON line of outputs and endpoints, and the endpoints answer."""

from __future__ import annotations

import json
import os
import selectors
import subprocess
import sys
from pathlib import Path
from typing import Any

import boto3

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = Path(__file__).parent / "fixtures" / "app" / "template.yaml"


def _first_line(process: subprocess.Popen[str], timeout: float) -> str:
    assert process.stdout is not None
    selector = selectors.DefaultSelector()
    selector.register(process.stdout, selectors.EVENT_READ)
    if not selector.select(timeout):
        raise TimeoutError(f"no line on stdout within {timeout}s")
    return process.stdout.readline()


def test_serve_prints_outputs_and_endpoints_that_answer() -> None:
    # Given the CLI started as another process on the fixture template
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["PYTHONPATH"] = str(ROOT)
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "local",
            "serve",
            "--template",
            str(TEMPLATE),
            "--time-scale",
            "0.01",
            "--param",
            "Greeting=hey",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        # When its first stdout line is read
        line = json.loads(_first_line(process, timeout=60))

        # Then it holds the template's Outputs and both endpoints, all on 127.0.0.1
        assert {"WorkflowArn", "DataBucketName", "TopicArn", "CounterTableName", "WorkerFunctionName"} <= set(line)
        assert line["Endpoint"].startswith("http://127.0.0.1:")
        credentials: dict[str, Any] = {
            "region_name": "us-east-1",
            "aws_access_key_id": "testing",
            "aws_secret_access_key": "testing",
        }
        sfn = boto3.client("stepfunctions", endpoint_url=line["Endpoint"], **credentials)
        machines = sfn.list_state_machines()["stateMachines"]
        assert [m["stateMachineArn"] for m in machines] == [line["WorkflowArn"]]
        assert line["AppIntegrationsEndpoint"].startswith("http://127.0.0.1:")
        appintegrations = boto3.client("appintegrations", endpoint_url=line["AppIntegrationsEndpoint"], **credentials)
        assert appintegrations.list_data_integrations()["DataIntegrations"] == []
        # and nothing else was printed on stdout
        execution = sfn.start_execution(stateMachineArn=line["WorkflowArn"], name="cli", input='{"name": "cli"}')
        assert sfn.describe_execution(executionArn=execution["executionArn"])["status"] in ("RUNNING", "SUCCEEDED")
    finally:
        process.terminate()
        remaining_stdout, _ = process.communicate(timeout=30)
    assert process.returncode == 0
    assert remaining_stdout == ""
