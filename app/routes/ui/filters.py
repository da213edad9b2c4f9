"""List filters from the query string, validated by the admin API's own query models.

Empty fields are dropped (an HTML form sends them all); ``datetime-local``
values carry no zone and are taken as UTC, as the pages show times in UTC.
"""

from __future__ import annotations

from typing import Any, TypeVar

from flask import request
from pydantic import BaseModel, ValidationError

from app.clock import parse_iso
from app.errors import ValidationFailed

Query = TypeVar("Query", bound=BaseModel)
TIME_FIELDS = ("since", "until")


def filter_args(names: tuple[str, ...]) -> dict[str, str]:
    """The non-empty query parameters among ``names`` (kept in links and forms)."""
    return {name: value for name in names if (value := request.args.get(name, "").strip())}


def parse(model: type[Query], args: dict[str, str]) -> Query:
    values: dict[str, Any] = dict(args)
    for name in TIME_FIELDS:
        if name in values:
            try:
                values[name] = parse_iso(values[name])
            except ValueError:
                raise ValidationFailed(
                    f"{name} is not a date and time (YYYY-MM-DDTHH:MM[:SS], UTC)."
                ) from None
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        details = ValidationFailed.from_pydantic(exc).details
        fields = ", ".join(f"{d['path']}: {d['message']}" for d in details)
        raise ValidationFailed(f"Invalid filter ({fields}).") from None
