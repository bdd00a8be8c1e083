"""Consumer-group members for the fault tests: ``sluice consume`` worker processes (the operator's pods)
with the recording handler, and library members running in the test's event loop."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

from sluice import ConsumerGroupOptions, EventStore
from tests.faults.traffic import Processed, describe_error, read_records

REPOSITORY = Path(__file__).resolve().parents[2]
SESSION_SECONDS = 3.0


@dataclasses.dataclass
class WorkerProcess:
    """One ``sluice consume --handler tests.faults.handlers:record`` process."""

    consumer_id: str
    record: Path
    log: Path
    process: subprocess.Popen[bytes]

    def processed(self) -> list[Processed]:
        return read_records([self.record])

    def stop(self, within: float = 20.0) -> int | None:
        """SIGTERM and wait; the exit code, or None if it had to be killed."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=within)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            return None

    def log_tail(self, lines: int = 15) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def start_worker(
    dsn: str,
    work_directory: Path,
    *,
    stream: str,
    group: str,
    consumer_id: str,
    session_seconds: float = SESSION_SECONDS,
    work_seconds: float = 0.01,
    extra: tuple[str, ...] = (),
) -> WorkerProcess:
    record = work_directory / f"{group}-{consumer_id}-{time.monotonic_ns()}.jsonl"
    log = record.with_suffix(".log")
    environment = {key: value for key, value in os.environ.items() if not key.startswith("SLUICE_")}
    environment |= {
        "FAULTS_RECORD": str(record),
        "FAULTS_CONSUMER": consumer_id,
        "FAULTS_WORK_SECONDS": str(work_seconds),
    }
    with log.open("ab") as output:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "sluice.cli",
                "consume",
                "--dsn",
                dsn,
                "--stream",
                stream,
                "--group",
                group,
                "--consumer-id",
                consumer_id,
                "--handler",
                "tests.faults.handlers:record",
                "--session-timeout",
                str(session_seconds),
                "--batch-size",
                "10",
                "--http-port",
                "0",
                *extra,
            ],
            stdout=output,
            stderr=subprocess.STDOUT,
            env=environment,
            cwd=REPOSITORY,
        )
    return WorkerProcess(consumer_id, record, log, process)


@dataclasses.dataclass
class LibraryMember:
    """``reader.consume`` in a task, recording each event; ``failure`` is what ended it, if anything did."""

    store: EventStore
    stream: str
    group: str
    consumer_id: str
    work_seconds: float = 0.01
    processed: list[Processed] = dataclasses.field(default_factory=list)
    failure: str | None = None
    task: asyncio.Task[None] = dataclasses.field(init=False)

    def start(self) -> None:
        self.task = asyncio.create_task(self._consume(), name=f"member-{self.consumer_id}")

    async def _consume(self) -> None:
        options = ConsumerGroupOptions(session_timeout=timedelta(seconds=SESSION_SECONDS), batch_size=10)
        try:
            async with self.store.consumer_groups().consume(
                self.stream, group_id=self.group, consumer_id=self.consumer_id, options=options
            ) as events:
                async for event in events:
                    await asyncio.sleep(self.work_seconds)
                    self.processed.append(
                        Processed(self.consumer_id, event.partition, event.offset, event.data["seq"], time.time())
                    )
            self.failure = "the consumption ended by itself"
        except asyncio.CancelledError:
            raise
        except Exception as error:
            self.failure = describe_error(error)

    async def stop(self) -> None:
        if not self.task.done():
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(self.task, timeout=15)
