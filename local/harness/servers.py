"""The two servers of the offline stack, on 127.0.0.1: moto (every AWS service it has) and the emulator.

moto's `ThreadedMotoServer.start` binds inside its thread and waits for a ready event that a bind
failure never sets: a taken port hung the caller forever. `MotoServer` binds first, in the caller's
thread, so a taken port fails at once with `PortInUse`.
"""

from __future__ import annotations

import inspect
import json
import logging
import os
import threading
import urllib.request
from typing import Any

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import BaseWSGIServer, make_server

LOG = logging.getLogger("local.harness")
HOST = "127.0.0.1"


class PortInUse(RuntimeError):
    """The port asked for is taken (or cannot be bound)."""


class _Dispatcher(DomainDispatcherApplication):
    """moto's dispatcher, remembering which backend serves each host.

    moto looked it up on every request, listing its package folder on disk each time (about a
    tenth of the server's time per S3 GET). The answer depends only on the host and on moto's
    modules, which do not change while the server runs.
    """

    def __init__(self, create_app: Any) -> None:
        super().__init__(create_app)
        self._backend_by_host: dict[str | None, Any] = {}

    def get_backend_for_host(self, host: str | None) -> Any:
        # (moto calls this with its own lock held)
        try:
            return self._backend_by_host[host]
        except KeyError:
            backend = super().get_backend_for_host(host)
            self._backend_by_host[host] = backend
            return backend


class MotoServer:
    """moto's WSGI application on a werkzeug server in a daemon thread."""

    def __init__(self, port: int = 0) -> None:
        self._port = port
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self.url = ""

    def start(self) -> str:
        """Bind (raising `PortInUse` at once if the port is taken), serve in a thread, return the URL."""
        app = _Dispatcher(create_backend_app)
        try:
            self._server = make_server(HOST, self._port, app, threaded=True, request_handler=MotoRequestHandler)
        except (OSError, SystemExit) as error:
            # werkzeug exits the process (SystemExit) when the port is in use; this is a library call.
            raise PortInUse(f"cannot listen on {HOST}:{self._port}: the port is in use or not allowed") from error
        port = self._server.server_address[1]
        self.url = f"http://{HOST}:{port}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="moto-server", daemon=True)
        self._thread.start()
        return self.url

    @property
    def port(self) -> int:
        """The port it listens on."""
        assert self._server is not None, "start() first"
        return int(self._server.server_address[1])

    def post(self, path: str, body: dict[str, Any]) -> None:
        """POST a JSON body to one of moto's own endpoints (/moto-api/...)."""
        request = urllib.request.Request(
            self.url + path, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST"
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            response.read()

    def stop(self) -> None:
        """Stop serving and close the socket."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None


def start_emulator(
    *,
    s3_endpoint_url: str,
    region: str,
    account_id: str,
    port: int,
    config: dict[str, Any],
    authorizer: Any,
    clock: Any = None,
) -> Any:
    """Start the AppIntegrations emulator; pass `authorizer` when its constructor takes one.

    Raises ImportError when `local.emulator` is not importable.
    """
    from local.emulator import EmulatorConfig, EmulatorServer

    options: dict[str, Any] = {
        "host": HOST,
        "port": port,
        "s3_endpoint_url": s3_endpoint_url,
        "region": region,
        "account_id": account_id,
        "config": EmulatorConfig(**config),
    }
    if clock is not None:
        options["clock"] = clock
    if "authorizer" in inspect.signature(EmulatorServer).parameters:
        options["authorizer"] = authorizer
    else:
        LOG.debug("The emulator takes no authorizer yet: AppIntegrations calls are not authorized by IAM")
    try:
        emulator = EmulatorServer(**options)
        emulator.start()
    except OSError as error:
        raise PortInUse(f"cannot listen on {HOST}:{port} for the emulator: {error}") from error
    return emulator


class ProcessEnvironment:
    """Sets variables of this process and puts the previous values back."""

    def __init__(self) -> None:
        self._saved: dict[str, str | None] = {}

    def set(self, values: dict[str, str | None]) -> None:
        """Set (or with None remove) variables, remembering what was there first."""
        for key, value in values.items():
            if key not in self._saved:
                self._saved[key] = os.environ.get(key)
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value

    def restore(self) -> None:
        """Put every variable back as it was."""
        for key, value in self._saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._saved = {}
