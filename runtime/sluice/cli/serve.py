"""``sluice serve``: run the gateway — gRPC and the REST management API (with health and metrics).

    sluice serve --dsn postgresql://... --grpc-address 0.0.0.0:50051 --http-address 0.0.0.0:8080

Bearer tokens come from ``SLUICE_API_TOKENS`` or ``SLUICE_API_TOKENS_FILE``; ``--kubernetes-token-review``
also accepts Kubernetes service-account tokens (checked with a TokenReview; in a pod only); the access
policy comes from ``--access-policy-file`` or ``SLUICE_ACCESS_POLICY`` (docs/access-control.md); TLS
from ``--tls-certificate`` and ``--tls-key`` (plus ``--tls-client-ca`` for mutual TLS) for gRPC and REST
alike; ``--health-address`` adds a plain-HTTP port serving only ``/health/*`` for probes. Port 0 in an
address picks a free port; ``--ready-file`` receives the bound ports (JSON, written atomically) once the
listeners accept connections. This is the only way to run the gateway (there is no ``python -m sluice.rpc``).

It starts even while the database is unreachable or not migrated (unready, retrying with backoff).
SIGTERM drains both servers and exits 0 within ``--grace-seconds`` plus ``--close-seconds``, whatever the
database does; if stopping is stuck past that (and a few seconds more) the process exits 1 anyway.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from datetime import timedelta
from pathlib import Path

import click

from sluice.cli.durations import Seconds
from sluice.cli.running import run
from sluice.cli.settings import require_dsn, setting, store_settings

readable_file = click.Path(exists=True, dir_okay=False, path_type=Path)
WATCHDOG_MARGIN_SECONDS = 5.0
logger = logging.getLogger(__name__)


def _arm_watchdog(seconds: float) -> None:
    """Exit the process ``seconds`` from now unless it has exited by then (a last resort: every shutdown
    step already has a time limit, but a task that swallows its cancellation could still hold asyncio)."""

    def give_up() -> None:
        logger.error("stopping took longer than %.1f s: exiting anyway", seconds)
        logging.shutdown()
        os._exit(1)

    timer = threading.Timer(seconds, give_up)
    timer.daemon = True
    timer.start()


@click.command()
@store_settings
@setting("--grpc-address", default="0.0.0.0:50051", show_default=True, help="host:port of the gRPC server.")
@setting("--http-address", default="0.0.0.0:8080", show_default=True, help="host:port of REST, health, metrics.")
@setting(
    "--health-address",
    help="host:port of a plain-HTTP listener serving only /health/* (for probes when REST is served over TLS).",
)
@setting("--tls-certificate", type=readable_file, help="PEM certificate chain: serve gRPC and REST over TLS.")
@setting("--tls-key", type=readable_file, help="PEM private key of --tls-certificate.")
@setting("--tls-client-ca", type=readable_file, help="PEM CA: require client certificates it signed (mTLS).")
@setting(
    "--access-policy-file",
    type=readable_file,
    help="YAML or JSON access policy (grants of read/write/consume/admin per stream pattern).",
)
@setting(
    "--kubernetes-token-review/--no-kubernetes-token-review",
    default=False,
    show_default=True,
    help="Also accept Kubernetes service-account tokens, checked with a TokenReview (in a pod).",
)
@setting("--migrate/--no-migrate", default=False, show_default=True, help="Apply schema migrations at start.")
@setting(
    "--poll-interval",
    type=Seconds(minimum_open=True),
    help="How often subscriptions poll for new events between notifications (default: 0.5).",
)
@setting("--grace-seconds", type=Seconds(), default=10.0, show_default=True)
@setting(
    "--close-seconds",
    type=Seconds(),
    default=5.0,
    show_default=True,
    help="After the grace period: the time limit of stopping the workers and closing the store.",
)
@setting(
    "--max-request-body-bytes",
    type=click.IntRange(min=1),
    help="Refuse REST request bodies over this with 413 (default: the payload limit plus 1 MiB).",
)
@setting("--log-level", type=click.Choice(["debug", "info", "warning", "error"]), default="info")
@setting(
    "--ready-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help='Write the bound ports here once listening, atomically: {"grpc_port": ..., "http_port": ..., ...}.',
)
def serve(  # noqa: PLR0917  (click passes the options positionally)
    dsn: str | None,
    schema_name: str,
    grpc_address: str,
    http_address: str,
    health_address: str | None,
    tls_certificate: Path | None,
    tls_key: Path | None,
    tls_client_ca: Path | None,
    access_policy_file: Path | None,
    kubernetes_token_review: bool,
    migrate: bool,
    poll_interval: float | None,
    grace_seconds: float,
    close_seconds: float,
    max_request_body_bytes: int | None,
    log_level: str,
    ready_file: Path | None,
) -> None:
    """Serve gRPC and the REST management API until SIGTERM."""
    # Imported here: gRPC and FastAPI take about a second to import, which other commands need not pay.
    from sluice.observability.logging import configure_logging  # noqa: PLC0415
    from sluice.rpc.tls import TlsSettings  # noqa: PLC0415
    from sluice.security import (  # noqa: PLC0415
        BearerTokens,
        TokenReviewAuthenticator,
        load_policy_file,
        policy_from_environment,
    )
    from sluice.serving.garbage_collection import settle_after_startup  # noqa: PLC0415
    from sluice.serving.serve import ServeSettings, ServingAddresses  # noqa: PLC0415
    from sluice.serving.serve import serve as run_gateway  # noqa: PLC0415

    if (tls_certificate is None) != (tls_key is None):
        raise click.UsageError("give both --tls-certificate and --tls-key, or neither")
    if tls_client_ca is not None and tls_certificate is None:
        raise click.UsageError("--tls-client-ca needs --tls-certificate and --tls-key")
    tls = (
        TlsSettings(certificate_chain=tls_certificate, private_key=tls_key, client_ca=tls_client_ca)
        if tls_certificate is not None and tls_key is not None
        else None
    )
    token_review = TokenReviewAuthenticator.in_cluster() if kubernetes_token_review else None
    if kubernetes_token_review and token_review is None:
        raise click.UsageError(
            "--kubernetes-token-review needs a pod's service account (KUBERNETES_SERVICE_HOST and its token)"
        )
    settings = ServeSettings(
        database_url=require_dsn(dsn),
        schema_name=schema_name,
        grpc_address=grpc_address,
        http_address=http_address,
        health_address=health_address,
        tokens=BearerTokens.from_environment(),
        token_review=token_review,
        policy=load_policy_file(access_policy_file) if access_policy_file is not None else policy_from_environment(),
        tls=tls,
        migrate=migrate,
        poll_interval=timedelta(seconds=poll_interval) if poll_interval is not None else None,
        grace_seconds=grace_seconds,
        close_seconds=close_seconds,
        max_request_body_bytes=max_request_body_bytes,
    )
    configure_logging(log_level.upper())

    def announce(addresses: ServingAddresses) -> None:
        settle_after_startup()  # fewer, cheaper garbage collections while serving (serving/garbage_collection.py)
        if ready_file is not None:
            ports = {
                "grpc_port": addresses.grpc_port,
                "http_port": addresses.http_port,
                "health_port": addresses.health_port,
            }
            partial = ready_file.with_name(ready_file.name + ".partial")
            partial.write_text(json.dumps(ports), encoding="utf-8")
            partial.replace(ready_file)  # readers never see a half-written file

    def watchdog() -> None:
        _arm_watchdog(grace_seconds + close_seconds + WATCHDOG_MARGIN_SECONDS)

    run(run_gateway(settings, ready=announce, on_stopping=watchdog))
