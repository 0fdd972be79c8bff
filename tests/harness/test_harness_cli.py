"""`python -m local serve` from outside its process: the JSON line, credentials, a taken port, SIGTERM."""

from __future__ import annotations

import json
import os
import selectors
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = Path(__file__).parent / "fixtures" / "app" / "template.yaml"


def _serve(*extra: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    # This checkout's packages, as pytest's pythonpath has them: serve reads the pipeline's durations (cpexport)
    # and its request gate the permissions table (cpexport_cli).
    env["PYTHONPATH"] = os.pathsep.join(str(ROOT / part) for part in (".", "layers/common", "cli"))
    return subprocess.Popen(
        [sys.executable, "-m", "local", "serve", "--template", str(TEMPLATE), "--time-scale", "0.01", *extra],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _first_line(process: subprocess.Popen[str], timeout: float) -> str:
    assert process.stdout is not None
    selector = selectors.DefaultSelector()
    selector.register(process.stdout, selectors.EVENT_READ)
    if not selector.select(timeout):
        raise TimeoutError(f"no line on stdout within {timeout}s")
    return process.stdout.readline()


def test_serve_prints_outputs_endpoints_and_admin_keys_that_answer() -> None:
    # Given the CLI started as another process on the fixture template
    process = _serve("--param", "Greeting=hey")
    try:
        # When its first stdout line is read
        line = json.loads(_first_line(process, timeout=60))

        # Then it holds the template's Outputs, both endpoints on 127.0.0.1, and the admin's keys
        assert {"WorkflowArn", "DataBucketName", "TopicArn", "CounterTableName", "WorkerFunctionName"} <= set(line)
        assert line["Endpoint"].startswith("http://127.0.0.1:")
        assert line["AppIntegrationsEndpoint"].startswith("http://127.0.0.1:")
        printed: dict[str, Any] = {
            "region_name": "us-east-1",
            "aws_access_key_id": line["AccessKeyId"],
            "aws_secret_access_key": line["SecretAccessKey"],
        }
        conventional = {**printed, "aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
        # both the printed keys and testing/testing are the administrator, on both endpoints
        for credentials in (printed, conventional):
            sfn = boto3.client("stepfunctions", endpoint_url=line["Endpoint"], **credentials)
            machines = sfn.list_state_machines()["stateMachines"]
            assert [m["stateMachineArn"] for m in machines] == [line["WorkflowArn"]]
            appintegrations = boto3.client(
                "appintegrations", endpoint_url=line["AppIntegrationsEndpoint"], **credentials
            )
            assert appintegrations.list_data_integrations()["DataIntegrations"] == []
        # and a key nobody issued is refused, as AWS refuses it
        stranger = boto3.client(
            "stepfunctions", endpoint_url=line["Endpoint"], **{**printed, "aws_access_key_id": "AKIANOBODY"}
        )
        with pytest.raises(ClientError, match=r"InvalidClientTokenId|security token"):
            stranger.list_state_machines()
        execution = sfn.start_execution(stateMachineArn=line["WorkflowArn"], name="cli", input='{"name": "cli"}')
        assert sfn.describe_execution(executionArn=execution["executionArn"])["status"] in ("RUNNING", "SUCCEEDED")
    finally:
        process.terminate()
        remaining_stdout, _ = process.communicate(timeout=30)
    # SIGTERM stops it cleanly, and nothing else was printed on stdout
    assert process.returncode == 0
    assert remaining_stdout == ""


def test_serve_on_a_taken_port_fails_at_once_with_a_clear_message() -> None:
    # Given a port somebody else listens on
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        # When serve is asked to use it
        started = time.monotonic()
        process = _serve("--port", str(port))
        try:
            stdout, stderr = process.communicate(timeout=60)
        finally:
            if process.poll() is None:
                process.kill()

    # Then it exits non-zero, prints no JSON line, and says which port is the problem
    assert process.returncode == 2
    assert stdout == ""
    assert f"127.0.0.1:{port}" in stderr and "in use" in stderr
    # (and it did not deploy first: a deployment takes seconds, the bind failure is immediate)
    assert time.monotonic() - started < 60


def test_sigterm_stops_serve_even_while_it_is_still_deploying() -> None:
    # Given serve just started (still importing or deploying: no line yet)
    process = _serve()
    try:
        time.sleep(0.5)
        assert process.poll() is None

        # When it receives SIGTERM
        process.send_signal(signal.SIGTERM)

        # Then it stops
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode in (0, -signal.SIGTERM, 128 + signal.SIGTERM)
