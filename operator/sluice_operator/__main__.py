"""``python -m sluice_operator``: run the operator (kopf) for one namespace, several, or all of them.

    python -m sluice_operator --all-namespaces --liveness-port 8080 --metrics-port 9090
    python -m sluice_operator --namespace shop

Settings come from the environment (``sluice_operator.settings``): SLUICE_DSN (the default database),
SLUICE_SCHEMA, SLUICE_IMAGE, SLUICE_OPERATOR_RESYNC_SECONDS, ... The Kubernetes API is found in-cluster or
through KUBECONFIG.
"""

from __future__ import annotations

import click
import kopf
from prometheus_client import start_http_server

from sluice_operator import handlers
from sluice_operator.settings import OperatorSettings

__all__ = ["main"]


@click.command()
@click.option("--namespace", "namespaces", multiple=True, help="Watch this namespace (repeatable).")
@click.option("--all-namespaces", is_flag=True, help="Watch every namespace.")
@click.option("--liveness-port", type=int, default=8080, show_default=True, help="Serve /healthz here; 0 = off.")
@click.option("--metrics-port", type=int, default=9090, show_default=True, help="Serve /metrics here; 0 = off.")
@click.option("--bind-address", default="0.0.0.0", show_default=True, help="Address of both endpoints.")  # noqa: S104
@click.option("--verbose", is_flag=True, help="Log debug messages.")
def main(  # noqa: PLR0917  (click passes the options positionally)
    namespaces: tuple[str, ...],
    all_namespaces: bool,
    liveness_port: int,
    metrics_port: int,
    bind_address: str,
    verbose: bool,
) -> None:
    """Run the Sluice operator."""
    if bool(namespaces) == all_namespaces:
        raise click.UsageError("give either --namespace (one or more) or --all-namespaces")
    settings = OperatorSettings.from_environment()
    kopf.configure(verbose=verbose, log_format=kopf.LogFormat.JSON)
    if metrics_port:
        start_http_server(metrics_port, addr=bind_address)
    liveness = f"http://{bind_address}:{liveness_port}/healthz" if liveness_port else None
    kopf.run(
        standalone=True,
        clusterwide=all_namespaces,
        namespaces=namespaces,
        liveness_endpoint=liveness,
        memo=kopf.Memo(operator_settings=settings, namespaces=list(namespaces), handlers=handlers.__name__),
    )


if __name__ == "__main__":
    main()
