"""A throwaway PostgreSQL server for development, tests, benchmarks and the local demo.

It runs ``initdb`` into a temporary folder and starts ``postgres`` on a free loopback port (and a
unix socket in the same folder), then stops it by PID and deletes the folder. As root, PostgreSQL
refuses to run, so the server runs as the ``postgres`` system user that Debian's package creates.
The binaries come from ``SLUICE_PG_BINDIR``, ``pg_config --bindir``, ``/usr/lib/postgresql/*/bin``
or ``PATH``; ``apt-get install postgresql`` provides them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Self

from sluice.core.child_processes import parent_death_hook
from sluice.core.errors import UnavailableError
from sluice.storage.postgres.resume_watchdog import resume_when_parent_dies, stop_watchdog

SERVER_USER = "postgres"
"""The system account the server runs as when this process is root."""
STOP_TAKES_EFFECT_SECONDS = 5.0
"""How long ``pause()`` waits for the kernel to stop every process it sent SIGSTOP."""


class EmbeddedPostgresError(UnavailableError):
    """The throwaway server could not be found, initialised or started."""

    code = "embedded_postgres"


def find_postgres_bindir() -> Path:
    """The folder holding initdb and postgres, or EmbeddedPostgresError saying how to get them."""
    candidates: list[str] = []
    if explicit := os.environ.get("SLUICE_PG_BINDIR"):
        candidates.append(explicit)
    if pg_config := shutil.which("pg_config"):
        with contextlib.suppress(OSError, subprocess.CalledProcessError):
            candidates.append(
                subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=True).stdout.strip()
            )
    candidates.extend(sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version_key, reverse=True))
    if initdb := shutil.which("initdb"):
        candidates.append(str(Path(initdb).resolve().parent))
    for candidate in candidates:
        folder = Path(candidate)
        if (folder / "initdb").is_file() and (folder / "postgres").is_file():
            return folder
    raise EmbeddedPostgresError(
        "no PostgreSQL server binaries found (initdb and postgres): install them with "
        "`apt-get install postgresql`, or set SLUICE_PG_BINDIR"
    )


def _version_key(path: str) -> tuple[int, ...]:
    digits = Path(path).parent.name
    return tuple(int(part) for part in digits.split(".") if part.isdigit())


def free_loopback_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclasses.dataclass(frozen=True, slots=True)
class ServerSettings:
    """Server configuration. ``durable`` keeps fsync and synchronous_commit on (benchmarks);
    tests turn it off for speed, which changes nothing they observe."""

    durable: bool = False
    max_connections: int = 300
    shared_buffers: str = "128MB"
    database_user: str = "sluice"
    crash_safe_commits: bool = False
    """Keep ``synchronous_commit`` on even when not ``durable``: a commit is acknowledged only once its WAL
    is written to the operating system, so a SIGKILLed server loses nothing acknowledged (only an OS crash
    could, with fsync off). The fault-injection tests need it; other tests do not."""
    extra_listen_addresses: tuple[str, ...] = ()
    """Addresses to listen on besides 127.0.0.1 (a local Kubernetes node's bridge gateway, so its pods
    reach the server); the port is the same."""
    trusted_client_networks: tuple[str, ...] = ()
    """Networks (CIDR) whose TCP clients are trusted like loopback ones (``pg_hba.conf``), e.g. the pods'."""


class EmbeddedPostgres:
    """Start with ``with EmbeddedPostgres() as server: server.dsn()``; everything is removed on exit."""

    def __init__(self, settings: ServerSettings | None = None, *, base_dir: Path | None = None) -> None:
        self.settings = settings or ServerSettings()
        self._base_dir = base_dir
        self.bindir = find_postgres_bindir()
        self.port = 0
        self.work_dir: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._run_as: str | None = SERVER_USER if os.geteuid() == 0 else None
        self._paused = False
        self._resume_watchdog: subprocess.Popen[bytes] | None = None

    @property
    def data_dir(self) -> Path:
        assert self.work_dir is not None, "the server is not started"
        return self.work_dir / "data"

    @property
    def socket_dir(self) -> Path:
        assert self.work_dir is not None, "the server is not started"
        return self.work_dir

    @property
    def log_path(self) -> Path:
        assert self.work_dir is not None, "the server is not started"
        return self.work_dir / "postgres.log"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def dsn(self, database: str = "postgres") -> str:
        """A libpq/asyncpg URL for ``database`` on this server over loopback TCP."""
        return f"postgresql://{self.settings.database_user}@127.0.0.1:{self.port}/{database}"

    def start(self, timeout: float = 60.0) -> None:
        """initdb, then start the server and wait until it accepts connections."""
        self.work_dir = Path(tempfile.mkdtemp(prefix="sluice-pg-", dir=self._base_dir))
        self._give_to_server_user(self.work_dir)
        self._run(
            [
                str(self.bindir / "initdb"),
                "--pgdata",
                str(self.data_dir),
                "--username",
                self.settings.database_user,
                "--auth",
                "trust",
                "--encoding",
                "UTF8",
                "--locale",
                "C",
                "--no-sync",
            ]
        )
        with (self.data_dir / "pg_hba.conf").open("a") as host_based_authentication:
            for network in self.settings.trusted_client_networks:
                host_based_authentication.write(f"host all all {network} trust\n")
        self.port = free_loopback_port()
        self._launch(timeout)

    def _launch(self, timeout: float) -> None:
        """Start ``postgres`` on the data folder and port already chosen, and wait until it is ready."""
        durable = "on" if self.settings.durable else "off"
        synchronous_commit = "on" if self.settings.durable or self.settings.crash_safe_commits else "off"
        command = [
            str(self.bindir / "postgres"),
            "-D",
            str(self.data_dir),
            "-p",
            str(self.port),
            "-k",
            str(self.socket_dir),
            "-c",
            f"listen_addresses={','.join(('127.0.0.1', *self.settings.extra_listen_addresses))}",
            "-c",
            f"max_connections={self.settings.max_connections}",
            "-c",
            f"shared_buffers={self.settings.shared_buffers}",
            "-c",
            f"fsync={durable}",
            "-c",
            f"synchronous_commit={synchronous_commit}",
            "-c",
            f"full_page_writes={durable}",
            "-c",
            "log_min_messages=warning",
        ]
        with self.log_path.open("ab") as log:
            # SIGINT (a fast shutdown) when the process that started the server dies without stopping it.
            if setpriv := shutil.which("setpriv"):
                # setpriv switches the user and sets the parent-death signal after that switch, then runs
                # postgres: no Python runs between fork and exec, so Popen can use vfork. A preexec_fn
                # forks for real, which runs gRPC's fork handlers in the child; a server (re)started while
                # a gRPC channel is busy in this process was seen to crash there.
                self._process = subprocess.Popen(
                    [setpriv, *self._setpriv_options(), "--pdeathsig", "INT", "--", *command],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            else:
                # The hook makes system calls only, which is what preexec_fn allows with threads running.
                child_setup = parent_death_hook(signal.SIGINT, run_as=self._run_as)
                self._process = subprocess.Popen(
                    command,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    preexec_fn=child_setup,  # noqa: PLW1509
                    start_new_session=True,
                )
        self._wait_until_ready(timeout)

    def _setpriv_options(self) -> list[str]:
        """setpriv's options that run the server as ``SERVER_USER`` when this process is root."""
        if self._run_as is None:
            return []
        account = pwd.getpwnam(self._run_as)
        return [f"--reuid={account.pw_uid}", f"--regid={account.pw_gid}", "--clear-groups"]

    def _wait_until_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        pg_isready = self.bindir / "pg_isready"
        while time.monotonic() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                raise EmbeddedPostgresError(f"postgres exited with {self._process.returncode}:\n{self.log_tail()}")
            ready = subprocess.run([str(pg_isready), "-h", "127.0.0.1", "-p", str(self.port), "-q"], check=False)
            if ready.returncode == 0:
                return
            time.sleep(0.05)
        self.stop()
        raise EmbeddedPostgresError(f"postgres did not accept connections within {timeout} s")

    def kill(self) -> None:
        """SIGKILL the postmaster and every backend at once, as an OOM kill or a node failure would;
        the data folder and port are kept, so ``restart()`` brings the server back with crash recovery.
        For fault-injection tests (Linux: the backends are found in ``/proc``)."""
        process = self._process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGSTOP)  # no new backend is forked while they are killed
        backends = self._backend_pids()
        for backend in backends:
            _signal_quietly(backend, signal.SIGKILL)
        process.kill()
        process.wait()
        self._paused = False
        stop_watchdog(self._resume_watchdog)
        self._resume_watchdog = None
        _wait_until_gone(backends)

    def restart(self, timeout: float = 60.0) -> None:
        """A fast shutdown (SIGINT; nothing if the server is already down, e.g. after ``kill()``), then
        start again on the same port and data folder and wait until it accepts connections."""
        process = self._process
        assert process is not None, "the server was never started"
        assert self.work_dir is not None, "the server was stopped"
        if process.poll() is None:
            self.resume()
            process.send_signal(signal.SIGINT)
            process.wait(timeout)
        self._launch(timeout)

    def pause(self) -> None:
        """SIGSTOP the postmaster and its backends: connections stay open and nothing answers (a hung
        database). ``resume()`` undoes it; ``stop()`` and ``restart()`` resume the server first."""
        process = self._process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGSTOP)
        self._paused = True
        backends = self._backend_pids()
        for backend in backends:
            _signal_quietly(backend, signal.SIGSTOP)
        self._resume_watchdog = resume_when_parent_dies([process.pid, *backends])
        # A signal takes effect when the kernel next handles it for that process, not when kill() returns:
        # under load a backend could still answer a query just after pause() returned.
        _wait_until_stopped([process.pid, *backends])

    def resume(self) -> None:
        """SIGCONT what ``pause()`` stopped."""
        process = self._process
        if not self._paused or process is None:
            return
        for backend in self._backend_pids():
            _signal_quietly(backend, signal.SIGCONT)
        if process.poll() is None:
            process.send_signal(signal.SIGCONT)
        self._paused = False
        stop_watchdog(self._resume_watchdog)
        self._resume_watchdog = None

    def _backend_pids(self) -> list[int]:
        """The postmaster's child processes (backends, checkpointer, WAL writer, ...). Each is the
        leader of its own process group, so they are found by parent id."""
        assert self._process is not None
        return [pid for pid, parent in _parent_ids().items() if parent == self._process.pid]

    def stop(self, timeout: float = 30.0) -> None:
        """Fast shutdown by PID (SIGINT), SIGKILL if it lingers, then delete the folder. Idempotent."""
        self.resume()
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self.work_dir is not None:
            shutil.rmtree(self.work_dir, ignore_errors=True)
            self.work_dir = None

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def _give_to_server_user(self, path: Path) -> None:
        if self._run_as is None:
            return
        try:
            account = pwd.getpwnam(self._run_as)
        except KeyError as error:
            raise EmbeddedPostgresError(
                f"running as root, PostgreSQL needs the {self._run_as!r} system user; "
                "`apt-get install postgresql` creates it"
            ) from error
        os.chown(path, account.pw_uid, account.pw_gid)

    def _run(self, command: list[str]) -> None:
        result = subprocess.run(command, capture_output=True, text=True, check=False, user=self._run_as)
        if result.returncode != 0:
            raise EmbeddedPostgresError(f"{Path(command[0]).name} failed:\n{result.stdout}\n{result.stderr}")

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def _parent_ids() -> dict[int, int]:
    """Every process id on this machine with its parent's id, from ``/proc``."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            status = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = status.rsplit(")", 1)[1].split()
        parents[int(entry)] = int(fields[1])
    return parents


def _signal_quietly(pid: int, signal_number: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal_number)


def _process_state(pid: int) -> str | None:
    """The process's state letter from ``/proc`` (``R``, ``S``, ``T`` stopped, ``Z`` zombie...); None when it
    is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return None


def _is_alive(pid: int) -> bool:
    return _process_state(pid) not in (None, "Z")


def _wait_until_stopped(pids: list[int], timeout: float = STOP_TAKES_EFFECT_SECONDS) -> None:
    """Until each of ``pids`` is stopped (``T``) or gone."""
    deadline = time.monotonic() + timeout
    while any(_process_state(pid) not in (None, "Z", "T", "t") for pid in pids):
        if time.monotonic() > deadline:
            raise EmbeddedPostgresError(f"postgres processes {pids} were not stopped within {timeout} s of SIGSTOP")
        time.sleep(0.005)


def _wait_until_gone(pids: list[int], timeout: float = 30.0) -> None:
    """Until none of ``pids`` runs (a new server cannot start while an old backend holds its shared memory)."""
    deadline = time.monotonic() + timeout
    while any(_is_alive(pid) for pid in pids):
        if time.monotonic() > deadline:
            raise EmbeddedPostgresError(f"postgres processes {pids} did not exit within {timeout} s")
        time.sleep(0.02)
