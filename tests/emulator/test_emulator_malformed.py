"""Every malformed request gets an answer in the service's error shape, as AWS's front ends give one:
never a connection closed without a response, never a request read from another's leftover bytes."""

from __future__ import annotations

import http.client
import json
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from local.emulator import EmulatorServer
from local.emulator.server import MAX_BODY_BYTES
from tests.emulator.emulator_helpers import ACCOUNT, REGION

BODY_TIMEOUT_SECONDS = 0.5


@pytest.fixture(scope="module")
def emulator() -> Iterator[EmulatorServer]:
    """An emulator that waits half a second for a body that does not come (S3 is never reached here)."""
    server = EmulatorServer(port=0, region=REGION, account_id=ACCOUNT, body_timeout_seconds=BODY_TIMEOUT_SECONDS)
    yield server.start()
    server.stop()


def exchange(emulator: EmulatorServer, request: bytes, *, half_close: bool = True) -> tuple[int, dict[str, str], Any]:
    """Send raw bytes; return the one answer's status, headers and JSON body, and check nothing else came."""
    with socket.create_connection(("127.0.0.1", emulator.port), timeout=10) as connection:
        connection.sendall(request)
        if half_close:
            connection.shutdown(socket.SHUT_WR)
        received = b""
        while chunk := connection.recv(65536):  # until the server closes the connection
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in header_lines)}
    length = int(headers["content-length"])
    assert len(body) == length, f"bytes after the answer (a request read from leftovers?): {body[length:]!r}"
    return int(status_line.split()[1]), headers, json.loads(body) if length else None


def post(path: str, headers: str, body: bytes = b"") -> bytes:
    return f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{headers}\r\n".encode() + body


@pytest.mark.parametrize(
    ("request_bytes", "status", "error_type"),
    [
        pytest.param(post("/dataIntegrations", "Content-Length: abc\r\n", b"{}"), 400, "BadRequestException", id="nan"),
        pytest.param(post("/dataIntegrations", "Content-Length: -5\r\n", b"{}"), 400, "BadRequestException", id="neg"),
        pytest.param(
            post("/dataIntegrations", "Content-Length: 2\r\nContent-Length: 7\r\n", b"{}"),
            400,
            "BadRequestException",
            id="two-lengths",
        ),
        pytest.param(
            post("/dataIntegrations", "Content-Length: 50\r\n", b"{}"), 400, "BadRequestException", id="short"
        ),
        pytest.param(
            post("/dataIntegrations", f"Content-Length: {MAX_BODY_BYTES + 1}\r\n"),
            413,
            "RequestEntityTooLargeException",
            id="too-large",
        ),
        pytest.param(
            post("/dataIntegrations", "Transfer-Encoding: chunked\r\n", b"2\r\n{}\r\n0\r\n\r\n"),
            411,
            "LengthRequiredException",
            id="chunked",
        ),
        pytest.param(b"GARBAGE\r\n\r\n", 400, "BadRequestException", id="request-line"),
        pytest.param(b"OPTIONS /dataIntegrations HTTP/1.1\r\nHost: x\r\n\r\n", 501, "NotImplemented", id="method"),
    ],
)
def test_a_request_whose_framing_is_broken_is_answered_and_its_connection_closed(
    emulator: EmulatorServer, request_bytes: bytes, status: int, error_type: str
) -> None:
    # Given a request the server cannot frame, When it is sent
    answered, headers, body = exchange(emulator, request_bytes)
    # Then one error answer in the service's shape comes back, and the connection is closed after it
    assert (answered, headers["x-amzn-errortype"]) == (status, error_type)
    assert body["Message"] and headers["connection"] == "close"


def test_a_body_that_never_arrives_is_answered_with_a_timeout(emulator: EmulatorServer) -> None:
    # Given a client that declares 50 bytes, sends 2 and keeps the connection open
    answered, headers, body = exchange(
        emulator, post("/dataIntegrations", "Content-Length: 50\r\n", b"{}"), half_close=False
    )
    # Then the server answers once its wait for the body is over
    assert (answered, headers["x-amzn-errortype"]) == (408, "RequestTimeoutException")
    assert "2 of 50" in body["Message"]


def test_a_head_request_is_answered_without_a_body(emulator: EmulatorServer) -> None:
    with socket.create_connection(("127.0.0.1", emulator.port), timeout=10) as connection:
        connection.sendall(b"HEAD /dataIntegrations HTTP/1.1\r\nHost: x\r\n\r\n")
        connection.shutdown(socket.SHUT_WR)
        received = b""
        while chunk := connection.recv(65536):
            received += chunk
    head, _, rest = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 501") and b"x-amzn-ErrorType: NotImplemented" in head and rest == b""


def signed(emulator: EmulatorServer, method: str, path: str, body: bytes) -> tuple[str, dict[str, str]]:
    request = AWSRequest(
        method=method, url=f"{emulator.url}{path}", data=body, headers={"Content-Type": "application/json"}
    )
    SigV4Auth(Credentials("testing", "testing"), "app-integrations", REGION).add_auth(request)
    return path, dict(request.headers.items())


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "error_type"),
    [
        ("POST", "/dataIntegrations", b"{not json", 400, "InvalidRequestException"),
        ("POST", "/dataIntegrations", b"[1, 2]", 400, "InvalidRequestException"),
        ("GET", "/no/such/path", b"", 404, "UnknownOperationException"),
        ("DELETE", "/dataIntegrations", b"", 404, "UnknownOperationException"),
    ],
)
def test_a_signed_request_the_api_cannot_read_is_answered_and_the_connection_kept(
    emulator: EmulatorServer, method: str, path: str, body: bytes, status: int, error_type: str
) -> None:
    # Given a well-framed, signed request with a body that is not a JSON object, or a path no operation has
    connection = http.client.HTTPConnection("127.0.0.1", emulator.port, timeout=10)
    try:
        url, headers = signed(emulator, method, path, body)
        connection.request(method, url, body=body, headers=headers)
        answer = connection.getresponse()
        payload = json.loads(answer.read())
        # Then it gets the service's error answer, and the connection serves the next request
        assert (answer.status, answer.getheader("x-amzn-ErrorType")) == (status, error_type)
        assert payload["Message"]
        connection.request("GET", "/_emulator/health")
        assert connection.getresponse().status == 200
    finally:
        connection.close()
