"""Run the emulator standalone: ``python -m local.emulator --port 4599 --s3-endpoint-url http://127.0.0.1:5000``."""

from __future__ import annotations

import argparse
import json
import logging
import threading

from local.emulator.config import EmulatorConfig, knob_table
from local.emulator.server import EmulatorServer


def main(argv: list[str] | None = None) -> None:
    """Parse arguments, start the server and serve until interrupted."""
    parser = argparse.ArgumentParser(prog="python -m local.emulator", description=__doc__)
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: any free port)")
    parser.add_argument("--s3-endpoint-url", default=None, help="S3 endpoint the exports are written to")
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("--account-id", default="123456789012")
    parser.add_argument("--config", default="{}", help="EmulatorConfig fields as a JSON object")
    parser.add_argument("--knob-table", action="store_true", help="print the README's knob table and exit")
    args = parser.parse_args(argv)
    if args.knob_table:
        print(knob_table(), end="")
        return
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    config = EmulatorConfig.model_validate(json.loads(args.config))
    server = EmulatorServer(
        port=args.port,
        s3_endpoint_url=args.s3_endpoint_url,
        region=args.region,
        account_id=args.account_id,
        config=config,
    ).start()
    print(server.url, flush=True)  # first stdout line: the endpoint, for scripts that start us
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


if __name__ == "__main__":
    main()
