"""Turns pydantic validation failures of Sluice's own models into Sluice's typed errors, so that
callers catch one hierarchy (SluiceError) whatever went wrong."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationError

from sluice.errors import InvalidArgumentError, InvalidNameError


def invalid_argument(error: ValidationError, model: str) -> InvalidArgumentError:
    """An InvalidArgumentError (InvalidNameError for a bad name) describing every failed field."""
    problems = []
    name_failed = False
    for detail in error.errors():
        field = ".".join(str(part) for part in detail["loc"]) or model
        name_failed = name_failed or field in {"name", "schema_name"}
        message = str(detail["msg"]).removeprefix("Value error, ")
        problems.append(f"{field}: {message}")
    text = f"invalid {model}: " + "; ".join(problems)
    return InvalidNameError(text) if name_failed else InvalidArgumentError(text)


class SluiceModel(BaseModel):
    """Base of Sluice's configuration models: invalid input raises InvalidArgumentError."""

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as error:
            raise invalid_argument(error, type(self).__name__) from error
