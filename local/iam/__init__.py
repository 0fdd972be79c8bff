"""Authorization for the offline stack: principals, policy evaluation, the request gate, the emulator's authorizer.

- `principals.CredentialBroker`: access keys -> principals (moto IAM users, STS sessions, the
  administrator), and role credentials for the services that assume roles;
- `policy`: identity and resource policy evaluation (Allow/Deny, wildcards, Principal, Condition);
- `operations`: the resource ARN(s) of each API operation; its IAM action(s) and dependent actions come
  from the product's table, `cpexport_cli.permissions`, which `cpexport verify` simulates on AWS;
- `simulation`: `iam:SimulatePrincipalPolicy`, answered with the same policies and evaluation;
- `enforcement.Enforcer` and `gate.RequestGate`: the decision for one signed request;
- `authorizer.MotoAuthorizer`: the same decisions for the AppIntegrations emulator.
"""

from local.iam.authorizer import MotoAuthorizer
from local.iam.enforcement import AccessDenied, Enforcer
from local.iam.errors import ServiceError
from local.iam.gate import RequestGate, SignedRequest
from local.iam.operations import ApiCall, Check
from local.iam.principals import CredentialBroker, Credentials, Principal, UntrustedRole
from local.iam.resources import ResourceDirectory

__all__ = [
    "AccessDenied",
    "ApiCall",
    "Check",
    "CredentialBroker",
    "Credentials",
    "Enforcer",
    "MotoAuthorizer",
    "Principal",
    "RequestGate",
    "ResourceDirectory",
    "ServiceError",
    "SignedRequest",
    "UntrustedRole",
]
