"""Errors from the server, as the same typed errors the library raises.

The server puts the error's stable code in the trailing metadata (``sluice-error-code``); the class
with that code is raised here with the server's message, so ``except sluice.ConcurrencyError``
works the same against a server as in-process. (Attributes that a class sets in its own
constructor, such as ``ConcurrencyError.head``, are not carried; the message says it all.)
Failures that are not Sluice errors (unreachable, deadline, cancelled) raise RemoteCallError.
"""

from __future__ import annotations

import grpc

from sluice.core.errors import RemoteCallError, SluiceError

ERROR_CODE_METADATA_KEY = "sluice-error-code"


def _error_classes() -> dict[str, type[SluiceError]]:
    classes: dict[str, type[SluiceError]] = {}
    pending: list[type[SluiceError]] = [SluiceError]
    while pending:
        error_class = pending.pop()
        classes.setdefault(error_class.code, error_class)
        pending.extend(error_class.__subclasses__())
    return classes


def error_from_code(code: str, message: str) -> SluiceError:
    """An instance of the error class with ``code`` (SluiceError itself for a code this client does
    not know), carrying ``message``."""
    error_class = _error_classes().get(code, SluiceError)
    error = error_class.__new__(error_class)
    Exception.__init__(error, message)
    if error_class is SluiceError:
        error.code = code
    return error


def error_from_rpc(error: grpc.aio.AioRpcError) -> SluiceError:
    """The Sluice error a failed call stands for."""
    for key, value in error.trailing_metadata() or ():
        if key == ERROR_CODE_METADATA_KEY and isinstance(value, str):
            return error_from_code(value, error.details() or value)
    status: grpc.StatusCode = error.code()
    return RemoteCallError(f"{status.name}: {error.details()}", status=status.name)
