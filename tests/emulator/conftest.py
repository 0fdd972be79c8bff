"""Fixtures: moto's S3/KMS server, a fresh emulator per test, and boto3 clients pointed at them."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from moto.server import ThreadedMotoServer

from local.emulator import EmulatorConfig, EmulatorControl, EmulatorServer
from local.emulator.auth import Authorizer
from tests.emulator.emulator_helpers import ACCOUNT, CREDS, FAST, NO_RETRY, REGION


@pytest.fixture(autouse=True)
def _offline_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Dummy credentials and no inherited endpoint overrides, so nothing can reach AWS."""
    for key in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL_APPINTEGRATIONS"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    """A moto server (S3, KMS) on a free loopback port."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(scope="session")
def boto_session() -> boto3.session.Session:
    """One boto3 session for the whole run: clients from a warm session are much cheaper to build."""
    return boto3.session.Session(**CREDS)


@pytest.fixture
def s3(moto_url: str, boto_session: boto3.session.Session) -> Any:
    """An S3 client on moto."""
    return boto_session.client("s3", endpoint_url=moto_url)


@pytest.fixture
def bucket(s3: Any) -> str:
    """A fresh bucket per test (moto's state is process-wide and other suites may reset it)."""
    name = f"export-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    return name


@pytest.fixture
def kms_key_arn(moto_url: str, boto_session: boto3.session.Session) -> str:
    """A KMS key in moto."""
    kms = boto_session.client("kms", endpoint_url=moto_url)
    arn: str = kms.create_key(Description="export key")["KeyMetadata"]["Arn"]
    return arn


@pytest.fixture
def make_emulator(moto_url: str) -> Iterator[Callable[..., EmulatorServer]]:
    """Start emulators with a given config and authorizer (stopped at teardown)."""
    started: list[EmulatorServer] = []

    def make(authorizer: Authorizer | None = None, **config: Any) -> EmulatorServer:
        emu = EmulatorServer(
            host="127.0.0.1",
            port=0,
            s3_endpoint_url=moto_url,
            region=REGION,
            account_id=ACCOUNT,
            config=EmulatorConfig(**{**FAST, **config}),
            authorizer=authorizer,
        )
        started.append(emu.start())
        return emu

    yield make
    for emu in started:
        emu.stop()


@pytest.fixture
def emu(make_emulator: Callable[..., EmulatorServer]) -> EmulatorServer:
    """An emulator with the fast default config."""
    return make_emulator()


@pytest.fixture
def ctl(emu: EmulatorServer) -> EmulatorControl:
    """The control client of ``emu``."""
    return EmulatorControl(emu.url)


@pytest.fixture
def client(emu: EmulatorServer, boto_session: boto3.session.Session) -> Any:
    """An unchanged boto3 appintegrations client on the emulator, without retries."""
    return boto_session.client("appintegrations", endpoint_url=emu.url, config=NO_RETRY)


@pytest.fixture
def raw_client(emu: EmulatorServer, boto_session: boto3.session.Session) -> Any:
    """A client without botocore's client-side validation, to reach the server-side checks."""
    config = NO_RETRY.merge(Config(parameter_validation=False))
    return boto_session.client("appintegrations", endpoint_url=emu.url, config=config)


@pytest.fixture
def setup(
    make_emulator: Callable[..., EmulatorServer], boto_session: Any
) -> Callable[..., tuple[EmulatorServer, EmulatorControl, Any]]:
    """Start an emulator with given knobs; return it, its control client and a boto3 client."""

    def make(**config: Any) -> tuple[EmulatorServer, EmulatorControl, Any]:
        emu = make_emulator(**config)
        client = boto_session.client("appintegrations", endpoint_url=emu.url, config=NO_RETRY)
        return emu, EmulatorControl(emu.url), client

    return make
