"""Write (or check) the checked-in OpenAPI document, ``docs/openapi.json``.

    python -m sluice.rest.openapi_document            # regenerate docs/openapi.json
    python -m sluice.rest.openapi_document --check    # exit 1 when it differs from the code

The document does not depend on the store or configuration, so it is built over a memory store.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

DEFAULT_PATH = Path(__file__).resolve().parents[3] / "docs" / "openapi.json"


async def _build_document() -> dict[str, Any]:
    import sluice  # noqa: PLC0415  (keeps `python -m` start-up light until needed)
    from sluice.rest.application import create_app  # noqa: PLC0415

    async with await sluice.connect("memory://") as store:
        document: dict[str, Any] = create_app(store, lag_refresh_interval=None).openapi()
    return document


def openapi_document() -> dict[str, Any]:
    """The OpenAPI document of the REST API."""
    return asyncio.run(_build_document())


def render(document: dict[str, Any]) -> str:
    """Stable text: sorted keys, two-space indent, trailing newline."""
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main(arguments: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="fail when the file differs from the code")
    parser.add_argument("--path", type=Path, default=DEFAULT_PATH, help="where the document lives")
    options = parser.parse_args(arguments)
    text = render(openapi_document())
    path: Path = options.path
    if options.check:
        current = path.read_text(encoding="utf-8") if path.exists() else ""
        if current != text:
            sys.stderr.write(f"{path} is out of date: run `python -m sluice.rest.openapi_document`\n")
            return 1
        return 0
    path.write_text(text, encoding="utf-8")
    sys.stdout.write(f"wrote {path}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
