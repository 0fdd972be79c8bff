"""Local emulator of the AppIntegrations API used for Amazon Connect Customer Profiles bulk export.

Offline only: it binds to 127.0.0.1 and writes exports to the S3 endpoint it is given.
"""

from local.emulator.auth import (
    AccessRequest,
    Authorizer,
    CallerCredentials,
    Grant,
    PolicyAuthorizer,
    StaticAuthorizer,
)
from local.emulator.config import EmulatorConfig
from local.emulator.control import EmulatorControl, EmulatorControlError
from local.emulator.faults import random_faults
from local.emulator.server import EmulatorServer

__all__ = [
    "AccessRequest",
    "Authorizer",
    "CallerCredentials",
    "EmulatorConfig",
    "EmulatorControl",
    "EmulatorControlError",
    "EmulatorServer",
    "Grant",
    "PolicyAuthorizer",
    "StaticAuthorizer",
    "random_faults",
]
