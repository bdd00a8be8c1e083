"""``StartedOnce``: what the dev kit's local services (control plane, KEDA, Argo CD, the Git server) share as
context managers: ``with Service(...) as service`` starts it and stops it however the block ends, and a
service is started at most once (create a new one to start again)."""

from __future__ import annotations

from types import TracebackType
from typing import Self

__all__ = ["StartedOnce"]


class StartedOnce:
    """Mixed into a service class that defines ``start() -> Self`` and ``stop()``."""

    _started = False

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def _begin_start(self) -> None:
        """Called first by ``start()``: refuses a second start."""
        if self._started:
            raise RuntimeError(f"this {type(self).__name__} was already started; create a new one")
        self._started = True

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exception_type: type[BaseException] | None,
        exception: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
