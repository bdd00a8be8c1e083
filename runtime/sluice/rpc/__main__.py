"""``python -m sluice.rpc --dsn URL --address HOST:PORT [--port-file PATH]``: run the gRPC server.

Tokens come from ``SLUICE_API_TOKENS`` / ``SLUICE_API_TOKENS_FILE`` (authentication is off when
neither is set); TLS from ``--tls-certificate``/``--tls-key`` (and ``--tls-client-ca`` for mTLS).
SIGTERM and SIGINT shut down gracefully. ``--port-file`` receives the bound port once serving.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
from datetime import timedelta
from pathlib import Path

import sluice
from sluice.rpc.server import DEFAULT_GRACE_SECONDS, run_grpc_server
from sluice.rpc.tls import TlsSettings
from sluice.security import BearerTokens
from sluice.security.policy_loading import policy_from_environment
from sluice.serving.garbage_collection import settle_after_startup


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m sluice.rpc", description=__doc__.splitlines()[0])
    parser.add_argument("--dsn", default=os.environ.get("SLUICE_DSN"), help="store URL (default: $SLUICE_DSN)")
    parser.add_argument("--address", default="127.0.0.1:50051", help="host:port to listen on (port 0: any free)")
    parser.add_argument("--port-file", type=Path, help="write the bound port here once serving")
    parser.add_argument("--schema", default="sluice", help="PostgreSQL schema of Sluice's tables")
    parser.add_argument("--poll-interval-ms", type=int, default=500, help="subscription poll interval")
    parser.add_argument("--grace-seconds", type=float, default=DEFAULT_GRACE_SECONDS)
    parser.add_argument("--tls-certificate", type=Path)
    parser.add_argument("--tls-key", type=Path)
    parser.add_argument("--tls-client-ca", type=Path, help="require client certificates signed by this CA")
    arguments = parser.parse_args()
    if not arguments.dsn:
        parser.error("--dsn (or SLUICE_DSN) is required")
    if (arguments.tls_certificate is None) != (arguments.tls_key is None):
        parser.error("--tls-certificate and --tls-key go together")
    return arguments


async def _serve(arguments: argparse.Namespace) -> None:
    tls = (
        TlsSettings(arguments.tls_certificate, arguments.tls_key, arguments.tls_client_ca)
        if arguments.tls_certificate is not None
        else None
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signal_number in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signal_number, stop.set)

    def ready(port: int) -> None:
        settle_after_startup()  # fan-out latency: sluice/serving/garbage_collection.py
        logging.getLogger("sluice.rpc").info("serving gRPC on port %d", port)
        if arguments.port_file is not None:
            temporary = arguments.port_file.with_suffix(".tmp")
            temporary.write_text(str(port))
            temporary.replace(arguments.port_file)  # readers never see a half-written file

    poll_interval = timedelta(milliseconds=arguments.poll_interval_ms)
    async with await sluice.connect(arguments.dsn, schema_name=arguments.schema, poll_interval=poll_interval) as store:
        await run_grpc_server(
            store,
            address=arguments.address,
            tokens=BearerTokens.from_environment(),
            policy=policy_from_environment(),
            tls=tls,
            ready=ready,
            stop=stop,
            grace_seconds=arguments.grace_seconds,
        )


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    asyncio.run(_serve(_arguments()))


if __name__ == "__main__":
    main()
