"""``python -m sluice_devkit.platform``: the whole local Sluice platform with one command.

What ``./dev demo`` runs, in one of two modes it names when it starts:

- **real node** (``--mode node``; the default where the machine allows it: root, overlayfs, cgroups): a
  kubelet, containerd and runc run the operator (installed by the Helm chart), the workers and the Replay
  Job as containers of the Sluice image (``node_platform.py``);
- **process stand-in** (``--mode processes``, or where no node can run): the steps below.

In the process stand-in, it

1. starts PostgreSQL (``sluice.storage.postgres.embedded``, fsync on, its folder under ``.sluice/postgres``);
2. starts the local control plane (etcd, kube-apiserver, kube-controller-manager; ``.sluice/control-plane``),
   or uses an existing cluster (``--kubeconfig PATH`` or ``--use-current-context``);
3. installs the CRDs (``kubectl apply --server-side -f crds/``) and waits until they are Established;
4. runs the operator (``python -m sluice_operator --all-namespaces``) on free loopback ports;
5. starts a small HTTP sink that prints the CloudEvents it receives, and applies ``examples/end-to-end/`` in
   the ``sluice-demo`` namespace (the Secret's URI and the sink URL point at what it started);
6. appends sample orders once the ``orders`` EventStream is Ready;
7. runs the pods of the ``email-notifications`` Deployment as local processes with the pods' own command,
   arguments and environment, and, as there is no kubelet, reports those pods Running and Ready;
8. prints ``kubectl get sluice -A`` every few seconds until the group's lag is 0;
9. waits for Ctrl-C (or exits at once with ``--exit-after-ready``) and stops everything it started, by
   process id, newest first.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

import click

from sluice.core.errors import SluiceError
from sluice_devkit.control_plane import ControlPlaneStartError
from sluice_devkit.local_node import node_unsupported_reason
from sluice_devkit.local_platform import REPOSITORY_ROOT, LocalPlatform, PlatformOptions
from sluice_devkit.node_platform import NodePlatform
from sluice_devkit.platform_errors import PlatformInterruptedError

__all__ = ["choose_platform", "main", "run_platform"]


def _raise_interrupted(signal_number: int, frame: FrameType | None) -> None:
    raise PlatformInterruptedError(f"{signal.Signals(signal_number).name} received")


@contextmanager
def _stop_on_signals() -> Iterator[None]:
    """Ctrl-C and SIGTERM interrupt the platform (then it stops what it started)."""
    previous = {number: signal.signal(number, _raise_interrupted) for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def choose_platform(options: PlatformOptions, mode: str) -> LocalPlatform:
    """``node``: a real kubelet runs the pods (needs root, overlayfs, cgroups); ``processes``: the process
    stand-in; ``auto``: the real node where it can run (never with an existing cluster), else the stand-in."""
    if mode == "processes" or options.kubeconfig_path is not None:
        return LocalPlatform(options)
    reason = node_unsupported_reason()
    if mode == "node" and reason is not None:
        raise click.UsageError(f"--mode node: a real node cannot run here: {reason}")
    if reason is not None:
        click.echo(
            f"mode: process stand-in (no real node here: {reason}); pods run as local processes, "
            "reported Running by this platform"
        )
        return LocalPlatform(options)
    return NodePlatform(options)


def run_platform(options: PlatformOptions, mode: str = "auto") -> int:
    """Run the platform; the process's exit code (0: it became ready, or Ctrl-C stopped it after that)."""
    platform = choose_platform(options, mode)
    exit_code = 0
    try:
        with _stop_on_signals():
            platform.start()
            platform.watch_until_caught_up()
            platform.show_read_model()
            platform.run_replay()
            platform.start_console()
            if not options.exit_after_ready:
                platform.keep_running()
    except PlatformInterruptedError:
        click.echo("")
        platform.say("interrupted: stopping everything this command started ...")
    except (SluiceError, ControlPlaneStartError) as error:  # PlatformError, EmbeddedPostgresError, ...
        click.echo(click.style(f"Error: {error}", fg="red"), err=True)
        exit_code = 1
    finally:
        # A second Ctrl-C must not cut the clean-up short (PostgreSQL would be left running).
        previous = {number: signal.signal(number, signal.SIG_IGN) for number in (signal.SIGINT, signal.SIGTERM)}
        try:
            platform.stop()
        finally:
            for number, handler in previous.items():
                signal.signal(number, handler)
    return exit_code


@click.command()
@click.option(
    "--events",
    type=click.IntRange(min=1, max=100_000),
    default=200,
    show_default=True,
    help="Sample OrderPlaced events to append.",
)
@click.option("--exit-after-ready", is_flag=True, help="Stop everything and exit once the group has caught up (CI).")
@click.option(
    "--keep-running/--no-keep-running",
    default=True,
    show_default=True,
    help="After catching up, run until Ctrl-C (--no-keep-running is --exit-after-ready).",
)
@click.option(
    "--kubeconfig",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Use this existing cluster instead of starting the local control plane.",
)
@click.option(
    "--use-current-context",
    is_flag=True,
    help="Use the cluster of KUBECONFIG (or ~/.kube/config) at its current context.",
)
@click.option(
    "--mode",
    type=click.Choice(["auto", "node", "processes"]),
    default="auto",
    show_default=True,
    help="node: a real kubelet and containerd run the pods as containers (root, overlayfs, cgroups); "
    "processes: the process stand-in; auto: node where it can run.",
)
@click.option(
    "--state-directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=REPOSITORY_ROOT / ".sluice",
    show_default=True,
    help="Where PostgreSQL, the control plane and the logs live while the platform runs.",
)
@click.option(
    "--ready-timeout",
    type=click.FloatRange(min=1),
    default=120.0,
    show_default=True,
    help="Seconds to wait for the group to catch up.",
)
def main(  # noqa: PLR0917  (click passes the options positionally)
    events: int,
    exit_after_ready: bool,
    keep_running: bool,
    kubeconfig: Path | None,
    use_current_context: bool,
    mode: str,
    state_directory: Path,
    ready_timeout: float,
) -> None:
    """Bring up the local Sluice platform: PostgreSQL, a control plane, the operator and the end-to-end example."""
    if kubeconfig is not None and use_current_context:
        raise click.UsageError("give --kubeconfig or --use-current-context, not both")
    kubeconfig_path = kubeconfig
    if use_current_context:
        kubeconfig_path = Path(os.environ.get("KUBECONFIG") or Path.home() / ".kube" / "config")
        if not kubeconfig_path.is_file():
            raise click.UsageError(f"--use-current-context: {kubeconfig_path} does not exist")
    options = PlatformOptions(
        state_directory=state_directory.absolute(),
        events=events,
        exit_after_ready=exit_after_ready or not keep_running,
        kubeconfig_path=None if kubeconfig_path is None else kubeconfig_path.absolute(),
        ready_timeout_seconds=ready_timeout,
    )
    sys.exit(run_platform(options, mode))


if __name__ == "__main__":
    main()
