"""Boto3 clients for a profile, a Region and optional endpoints: on AWS or on `python -m local serve`.

The pipeline's clients (`cpexport.clients`) take these through `api=`: the CLI reuses their calls,
conditions and error translation, and only chooses whose credentials and which endpoints they use.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import NoRegionError, ProfileNotFound

from cpexport_cli.errors import InvalidInput

APPINTEGRATIONS = "appintegrations"
# The standard per-service variable: botocore reads it too, but an explicit --endpoint-url would hide it.
APPINTEGRATIONS_ENDPOINT_VARIABLE = "AWS_ENDPOINT_URL_APPINTEGRATIONS"
_USER_AGENT = "customer-profiles-export-cli"


@dataclass(frozen=True)
class AwsOptions:
    """The standard AWS options of every command."""

    profile: str | None = None
    region: str | None = None
    endpoint_url: str | None = None
    appintegrations_endpoint_url: str | None = None


class Connection:
    """One boto3 session and its clients, each created once."""

    def __init__(self, options: AwsOptions) -> None:
        try:
            self.session = boto3.session.Session(profile_name=options.profile, region_name=options.region)
        except ProfileNotFound as exc:
            raise InvalidInput(f"--profile: {exc}") from None
        if not self.session.region_name:
            raise InvalidInput("no Region: pass --region, set AWS_REGION, or give the profile (or samconfig.toml) one")
        self.region: str = self.session.region_name
        self.options = options
        self._clients: dict[str, Any] = {}

    def endpoint_for(self, service: str) -> str | None:
        """The endpoint a client of `service` uses; None lets botocore resolve it (AWS_ENDPOINT_URL_* included)."""
        if service == APPINTEGRATIONS:
            # `python -m local serve` serves AppIntegrations on its own port, beside moto's.
            return (
                self.options.appintegrations_endpoint_url
                or os.environ.get(APPINTEGRATIONS_ENDPOINT_VARIABLE)
                or self.options.endpoint_url
            )
        return self.options.endpoint_url

    def client(self, service: str) -> Any:
        """A boto3 client of `service` (botocore's standard retry mode: transient errors are retried)."""
        if service not in self._clients:
            config = Config(retries={"mode": "standard", "max_attempts": 3}, user_agent_extra=_USER_AGENT)
            try:
                self._clients[service] = self.session.client(  # type: ignore[call-overload]
                    service, endpoint_url=self.endpoint_for(service), config=config
                )
            except NoRegionError:
                raise InvalidInput("no Region: pass --region") from None
        return self._clients[service]
