"""The HTTP front end: rest-json for the AWS API (routed from botocore's model) plus ``/_emulator/*`` controls."""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
from botocore.config import Config
from pydantic import ValidationError

from local.clock import Clock
from local.emulator.auth import Authorizer, CallerCredentials
from local.emulator.backend import Backend
from local.emulator.config import EmulatorConfig
from local.emulator.errors import (
    ApiError,
    AuthenticationError,
    ConnectionDropped,
    InternalServiceError,
    InvalidRequestError,
    LengthRequiredError,
    MalformedRequestError,
    RequestEntityTooLargeError,
    RequestTimeoutError,
)
from local.emulator.model import (
    IMPLEMENTED_OPERATIONS,
    UnsupportedOperationError,
    error_status,
    match_route,
    parse_request,
    serialize_output,
    service_model,
    validate_input,
)
from local.emulator.sigv4 import ReceivedRequest, authenticate

logger = logging.getLogger("local.emulator")

CONTROL_PREFIX = "/_emulator/"
_LOOPBACK_HOSTS = ("127.0.0.1", "localhost")
# API Gateway's payload limit; a larger declared body is refused before it is read.
MAX_BODY_BYTES = 10 * 1024 * 1024
# How long a declared body may take to arrive (a network timeout: not scaled by time_scale).
BODY_TIMEOUT_SECONDS = 20.0
# Error types of the refusals http.server makes itself (request line, headers, method), by status.
_HTTP_ERROR_TYPES = {
    400: "BadRequestException",
    408: "RequestTimeoutException",
    414: "RequestUriTooLongException",
    431: "RequestHeaderFieldsTooLargeException",
    501: "NotImplemented",
    505: "HttpVersionNotSupportedException",
}


def _pydantic_message(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "config"
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)


def _single(query: dict[str, list[str]], name: str) -> str | None:
    """One query parameter's value (None when absent); a repeated parameter is refused rather than guessed."""
    values = query.get(name, [])
    if len(values) > 1:
        raise InvalidRequestError(f"query parameter {name} is given {len(values)} times")
    return values[0] if values else None


def make_s3_client_factory(region: str, endpoint_url: str | None) -> Any:
    """Return a factory of the S3 client the export jobs write with (created once, on first use).

    Lazily, so that a server started before moto's ``mock_aws`` still gets an intercepted client;
    once, because building a boto3 client costs ~100 ms and botocore clients are thread-safe.
    Credentials come from the environment when present, else the dummy ``testing`` pair, so the
    emulator never walks the default chain out to an instance-metadata endpoint.
    """
    lock = threading.Lock()
    cache: list[Any] = []

    def factory() -> Any:
        with lock:
            if not cache:
                session = boto3.session.Session()
                kwargs: dict[str, Any] = {}
                if not (os.environ.get("AWS_ACCESS_KEY_ID") or os.environ.get("AWS_PROFILE")):
                    kwargs = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
                cache.append(
                    session.client(
                        "s3",
                        region_name=region,
                        endpoint_url=endpoint_url,
                        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2, "mode": "standard"}),
                        **kwargs,
                    )
                )
            return cache[0]

    return factory


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as botocore's connection pool expects
    # Headers and body go out in two writes: without TCP_NODELAY, Nagle + delayed ACK add ~40 ms per call.
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s %s", self.address_string(), format % args)

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_PATCH(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    # ----------------------------------------------------------------- plumbing

    def _read_body(self) -> bytes:
        """The body Content-Length declares; a body that cannot be framed raises `MalformedRequestError`."""
        if self.headers.get("Transfer-Encoding"):
            raise LengthRequiredError("A request body needs a Content-Length (chunked bodies are not read)")
        declared = {value.strip() for value in self.headers.get_all("Content-Length") or []}
        if not declared:
            return b""
        if len(declared) > 1 or not re.fullmatch(r"\d+", next(iter(declared))):
            raise MalformedRequestError(f"Content-Length must be one non-negative integer, got {sorted(declared)}")
        length = int(declared.pop())
        if length > MAX_BODY_BYTES:
            raise RequestEntityTooLargeError(f"The request body ({length} bytes) exceeds {MAX_BODY_BYTES} bytes")
        received = bytearray()
        self.connection.settimeout(self.server.body_timeout_seconds)
        try:
            while len(received) < length:
                chunk = self.rfile.read1(length - len(received))
                if not chunk:
                    raise MalformedRequestError(
                        f"The request body ended after {len(received)} of {length} bytes (Content-Length)"
                    )
                received += chunk
        except TimeoutError:
            raise RequestTimeoutError(
                f"Only {len(received)} of {length} bytes of the request body arrived within "
                f"{self.server.body_timeout_seconds:g} s"
            ) from None
        finally:
            self.connection.settimeout(None)
        return bytes(received)

    def _send(
        self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None, *, with_body: bool = True
    ) -> None:
        payload = json.dumps(body).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)) if with_body else "0")
        self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if with_body:
            self.wfile.write(payload)

    def _send_error(self, error: ApiError) -> None:
        code = error.code
        if isinstance(error, AuthenticationError) and self.server.backend.config.authentication_errors == "aws":
            code = error.aws_code
        status = error_status(code, error.default_status)
        self._send(status, {"Message": error.message}, {"x-amzn-ErrorType": code})

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """http.server's own refusals (request line, headers, method) in the service's error shape."""
        self.close_connection = True
        # A garbled request line leaves http.server at HTTP/0.9, which would send the body without a status line.
        self.request_version = self.protocol_version
        default_message = self.responses.get(code, ("Bad request",))[0]
        # A HEAD answer, and 1xx/204/304 answers, never carry a body.
        with_body = self.command != "HEAD" and code >= 200 and code not in (204, 304)
        self._send(
            code,
            {"Message": message or default_message},
            {"x-amzn-ErrorType": _HTTP_ERROR_TYPES.get(code, "BadRequestException")},
            with_body=with_body,
        )

    def _dispatch(self) -> None:
        try:
            body = self._read_body()
        except MalformedRequestError as malformed:
            # Where the next request would begin is unknown: answer, then close the connection.
            self.close_connection = True
            self._send_error(malformed)
            return
        raw_path, _, raw_query = self.path.partition("?")
        try:
            if raw_path.startswith(CONTROL_PREFIX):
                self._send(200, self._control(raw_path[len(CONTROL_PREFIX) :].rstrip("/"), raw_query, body))
            else:
                self._send(200, self._api(raw_path, raw_query, body))
        except ApiError as err:
            self._send_error(err)
        except ConnectionDropped:
            # No response at all: the client sees the connection close, as on a network fault.
            self.close_connection = True
        except Exception as exc:  # an emulator bug must still answer in the service's error format
            logger.exception("emulator failure on %s %s", self.command, self.path)
            self._send_error(InternalServiceError(f"Emulator internal error: {type(exc).__name__}: {exc}"))

    def _authenticate(self, raw_path: str, raw_query: str, body: bytes) -> CallerCredentials:
        backend = self.server.backend
        received = ReceivedRequest(
            method=self.command,
            raw_path=raw_path,
            raw_query=raw_query,
            headers=list(self.headers.items()),
            body=body,
        )
        return authenticate(received, backend.authorizer, region=backend.region, service=service_model().signing_name)

    def _api(self, raw_path: str, raw_query: str, body: bytes) -> dict[str, Any]:
        operation, labels = match_route(self.command, raw_path)
        caller = self._authenticate(raw_path, raw_query, body)
        if operation not in IMPLEMENTED_OPERATIONS:
            raise UnsupportedOperationError(f"The local AppIntegrations emulator does not implement {operation}")
        backend = self.server.backend
        backend.before_call(operation, caller.principal_arn)
        params = parse_request(operation, labels, raw_query, dict(self.headers.items()), body)
        validate_input(operation, params)
        output = serialize_output(operation, backend.handle(operation, params, caller.principal_arn))
        backend.after_call(operation)
        return output

    def _json_body(self, body: bytes) -> Any:
        try:
            return json.loads(body or b"{}")
        except ValueError as exc:
            raise InvalidRequestError(f"The request body is not valid JSON: {exc}") from None

    def _control(self, name: str, raw_query: str, body: bytes) -> dict[str, Any]:
        backend = self.server.backend
        method = self.command
        if name == "config" and method == "GET":
            return backend.config.model_dump()
        if name == "config" and method == "POST":
            partial = self._json_body(body)
            if not isinstance(partial, dict):
                raise InvalidRequestError("config body must be a JSON object of EmulatorConfig fields")
            try:
                return backend.update_config(partial).model_dump()
            except ValidationError as exc:
                raise InvalidRequestError(f"Invalid emulator config: {_pydantic_message(exc)}") from None
        if name == "objects" and method == "POST":
            return backend.seed_objects(self._json_body(body))
        if name == "objects" and method == "GET":
            query = urllib.parse.parse_qs(raw_query)
            return backend.live_objects(_single(query, "domainName"), _single(query, "objectType"))
        if name == "delete" and method == "POST":
            return backend.delete_objects(self._json_body(body))
        if name == "merge" and method == "POST":
            return backend.merge_profiles(self._json_body(body))
        if name == "jobs" and method == "GET":
            return {"jobs": backend.jobs_snapshot()}
        if name == "jobs/finish" and method == "POST":
            request = self._json_body(body)
            if not isinstance(request, dict) or not isinstance(request.get("jobId"), str):
                raise InvalidRequestError('body must be {"jobId": ..., "status": "COMPLETED"|"FAILED"}')
            message = request.get("statusMessage")
            if message is not None and not isinstance(message, str):
                raise InvalidRequestError("statusMessage must be a string")
            return backend.finish_job(request["jobId"], str(request.get("status", "COMPLETED")), message)
        if name == "faults" and method == "GET":
            return {"rules": backend.faults_snapshot()}
        if name == "reset" and method == "POST":
            backend.reset()
            return {}
        if name == "health" and method == "GET":
            return {"status": "ok", "nowMs": backend.now_ms(), "region": backend.region, "account": backend.account_id}
        raise InvalidRequestError(f"Unknown emulator control endpoint {method} {CONTROL_PREFIX}{name}")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    backend: Backend
    body_timeout_seconds: float = BODY_TIMEOUT_SECONDS


class EmulatorServer:
    """A local AppIntegrations (Customer Profiles bulk export) endpoint for an unchanged boto3 client.

    Point boto3 at it with ``endpoint_url=emu.url`` or ``AWS_ENDPOINT_URL_APPINTEGRATIONS=emu.url``.
    Exports are written to S3 through ``s3_endpoint_url`` (``None``: boto3's own resolution, e.g.
    inside moto's ``mock_aws``). ``authorizer`` knows the access keys, the callers' identity policies
    and the bucket/key policies; default: ``StaticAuthorizer`` (key ``testing``/``testing``, all allowed).
    ``clock`` times the jobs (default: the wall clock; ``local.clock.HeldClock`` when the Wait states share it).
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        s3_endpoint_url: str | None = None,
        region: str = "us-east-1",
        account_id: str = "123456789012",
        config: EmulatorConfig | None = None,
        authorizer: Authorizer | None = None,
        clock: Clock | None = None,
        body_timeout_seconds: float = BODY_TIMEOUT_SECONDS,
    ) -> None:
        if host not in _LOOPBACK_HOSTS:
            # The offline stack must never be reachable from outside this machine.
            raise ValueError(f"EmulatorServer binds to loopback only (got host {host!r})")
        if not re.fullmatch(r"\d{12}", account_id):
            raise ValueError(f"account_id must be 12 digits (got {account_id!r})")
        self.host = host
        self.requested_port = port
        self.s3_endpoint_url = s3_endpoint_url
        self.region = region
        self.account_id = account_id
        self.backend = Backend(
            region=region,
            account_id=account_id,
            config=config or EmulatorConfig(),
            s3_client_factory=make_s3_client_factory(region, s3_endpoint_url),
            authorizer=authorizer,
            clock=clock,
        )
        self.body_timeout_seconds = body_timeout_seconds
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The bound port (known once started)."""
        if self._httpd is None:
            raise RuntimeError("EmulatorServer is not started")
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``: the endpoint URL for boto3 and for EmulatorControl."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def config(self) -> EmulatorConfig:
        """The current configuration (a copy)."""
        return self.backend.config

    @property
    def authorizer(self) -> Authorizer:
        """Who may call and what the caller and the service may do (default: ``StaticAuthorizer``)."""
        return self.backend.authorizer

    @authorizer.setter
    def authorizer(self, authorizer: Authorizer) -> None:
        self.backend.authorizer = authorizer

    def configure(self, **changes: Any) -> EmulatorConfig:
        """Change knobs in-process (same semantics as ``POST /_emulator/config``)."""
        return self.backend.update_config(changes)

    def start(self) -> EmulatorServer:
        """Bind and serve on a daemon thread; returns self (non-blocking)."""
        if self._httpd is not None:
            raise RuntimeError("EmulatorServer is already started")
        httpd = _Server((self.host, self.requested_port), _Handler)
        httpd.backend = self.backend
        httpd.body_timeout_seconds = self.body_timeout_seconds
        self._httpd = httpd
        # A short poll interval keeps stop() fast (shutdown waits for the next poll).
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, name="appintegrations-emulator", daemon=True
        )
        self._thread.start()
        logger.info("AppIntegrations emulator listening on %s", self.url)
        return self

    def reset(self) -> None:
        """Forget every data integration, association, job and seeded object; restore the initial config."""
        self.backend.reset()

    def stop(self) -> None:
        """Stop serving, stop running jobs and release the port."""
        httpd, self._httpd = self._httpd, None
        if httpd is not None:
            httpd.shutdown()
            httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        self.backend.shutdown()

    def __enter__(self) -> EmulatorServer:
        if self._httpd is None:
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
