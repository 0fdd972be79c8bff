"""IAM policy evaluation offline: the installed CLI's evaluator (`cpexport_cli.policy`), one for both.

`cpexport verify` evaluates the bucket and key policies AWS returns with the same rules the offline
stack enforces, so a statement the offline stack refuses is one `verify` reports.
"""

from cpexport_cli import policy as _shared
from cpexport_cli.policy import *  # noqa: F403 (the same names, listed once, in the CLI's __all__)

__all__ = _shared.__all__
