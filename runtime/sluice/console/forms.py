"""The console's form posts: ``application/x-www-form-urlencoded`` bodies, read within a size limit and
checked for their CSRF token before anything is done."""

from __future__ import annotations

from urllib.parse import parse_qs

from starlette.requests import Request

from sluice.console.authentication import CSRF_FIELD, ConsoleSession
from sluice.core.errors import InvalidArgumentError

MAX_FORM_BYTES = 64 * 1024


async def read_form(request: Request) -> dict[str, list[str]]:
    """The posted fields (each with its values in order). InvalidArgumentError for another encoding."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip()
    if content_type != "application/x-www-form-urlencoded":
        raise InvalidArgumentError("the console's forms are sent as application/x-www-form-urlencoded")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise InvalidArgumentError(f"a console form is at most {MAX_FORM_BYTES} bytes")
    try:
        return parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=1000)
    except (UnicodeDecodeError, ValueError) as error:
        raise InvalidArgumentError(f"the form could not be read: {error}") from None


async def checked_form(request: Request, session: ConsoleSession) -> dict[str, list[str]]:
    """The posted fields, after the CSRF check (PermissionDeniedError when it fails)."""
    form = await read_form(request)
    session.check_post(request, first(form, CSRF_FIELD))
    return form


def first(form: dict[str, list[str]], name: str) -> str | None:
    values = form.get(name)
    return values[0] if values else None


def integers(form: dict[str, list[str]], name: str) -> list[int]:
    """Every value of ``name`` as an id (InvalidArgumentError for anything else)."""
    chosen = []
    for value in form.get(name, []):
        if not value.isdigit() or len(value) > 19:
            raise InvalidArgumentError(f"{name} must be positive whole numbers, got {value[:40]!r}")
        chosen.append(int(value))
    return chosen
