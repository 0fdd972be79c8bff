"""Command line of the offline stack: `python -m local <command>`.

    python -m local serve [--template template.yaml] [--port P] [--emulator-port P]
                          [--time-scale F] [--param Key=Value ...] [--no-iam] [--lambda-log FILE]

`serve` deploys the template into an in-process moto server (plus the AppIntegrations emulator),
prints exactly one JSON line on stdout (the stack's Outputs, "Endpoint", "AppIntegrationsEndpoint",
and the administrator's "AccessKeyId"/"SecretAccessKey"; `testing`/`testing` is that
administrator too), then serves until SIGINT/SIGTERM. Everything else goes to stderr. Every server
binds to 127.0.0.1. A taken port fails at once (exit code 2); a signal always stops it (a second
one ends the process at once).

New commands (e.g. `demo`) register a sub-parser in `build_parser` and a function in `COMMANDS`.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any


def _key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected Key=Value, got {text!r}")
    return key, value


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser with one sub-parser per command."""
    parser = argparse.ArgumentParser(prog="python -m local", description=__doc__.split("\n\n")[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logs, moto's included")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="deploy the template offline and serve it until stopped")
    serve.add_argument("--template", default="template.yaml", help="SAM template (default: %(default)s)")
    serve.add_argument("--port", type=int, default=0, help="moto port (default: a free one)")
    serve.add_argument("--emulator-port", type=int, default=0, help="emulator port (default: a free one)")
    serve.add_argument(
        "--time-scale",
        type=float,
        default=1.0,
        metavar="F",
        help="multiply the stack's durations by F (0.01: a 60 s Wait lasts 0.6 s): Waits, Retries, emulated "
        "jobs and the functions' wall-clock rules, as local/durations.py declares",
    )
    serve.add_argument(
        "--param",
        action="append",
        type=_key_value,
        default=[],
        metavar="Key=Value",
        help="template parameter override (repeatable)",
    )
    serve.add_argument("--stack-name", default="offline", help="CloudFormation stack name in moto")
    serve.add_argument("--no-emulator", action="store_true", help="do not start the AppIntegrations emulator")
    serve.add_argument("--no-iam", action="store_true", help="turn IAM enforcement off (debugging only)")
    serve.add_argument("--lambda-log", type=Path, default=None, help="write the handlers' output to this file")

    from local import demo as demo_module

    demo = commands.add_parser("demo", help="run the pipeline offline over several scheduled days (make demo)")
    demo_module.add_arguments(demo)
    return parser


class _Stopped(Exception):
    """A signal asked `serve` to stop."""


def serve(args: argparse.Namespace) -> int:
    """Deploy, print the one JSON line, serve until SIGINT/SIGTERM."""
    from local.harness.servers import PortInUse
    from local.harness.stack import OfflineStack

    # Handlers and libraries may print: from now on stdout is stderr, so the JSON line stays the
    # only thing on the real stdout.
    real_stdout = sys.stdout
    sys.stdout = sys.stderr
    signals = []

    def _stop(signum: int, _frame: Any) -> None:
        signals.append(signum)
        if len(signals) > 1:  # stopping hangs or the user insists: end now
            os._exit(128 + signum)
        logging.getLogger("local").info("Signal %s: stopping", signum)
        raise _Stopped(signum)

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    stack = OfflineStack(
        args.template,
        dict(args.param),
        time_scale=args.time_scale,
        emulator=False if args.no_emulator else None,
        stack_name=args.stack_name,
        port=args.port,
        emulator_port=args.emulator_port,
        verbose=args.verbose,
        enforce_iam=not args.no_iam,
        lambda_log=args.lambda_log,
    )
    try:
        with stack:
            admin = stack.admin_credentials
            line = {
                **stack.outputs,
                "Endpoint": stack.endpoint_url,
                "AppIntegrationsEndpoint": stack.appintegrations_endpoint_url,
                "AccessKeyId": admin.access_key_id,
                "SecretAccessKey": admin.secret_access_key,
            }
            real_stdout.write(json.dumps(line) + "\n")
            real_stdout.flush()
            while True:
                time.sleep(3600)  # a signal interrupts the sleep by raising _Stopped
    except _Stopped:
        return 0
    except PortInUse as error:
        print(f"python -m local serve: {error}", file=sys.stderr)
        return 2


def demo(args: argparse.Namespace) -> int:
    """Run `local.demo`: several scheduled days offline, then the completeness check."""
    from local import demo as demo_module

    return demo_module.run(args)


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {"serve": serve, "demo": demo}


def main(argv: Sequence[str] | None = None) -> int:
    """Parse `argv` and run the command."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not args.verbose:
        for noisy in ("botocore", "boto3", "urllib3"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
    return COMMANDS[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
