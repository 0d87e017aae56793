"""What every wire format shares: the base of its answer models, one parse step, one error for bad shapes.

Each interface module declares private pydantic models of the answers its API sends and parses each
answer once, at the edge; the rest of the module reads typed objects. Two kinds of field:

* what the result is made of (an image's data or URL, a task's status) is required: an answer without it
  is a `BadResponse` naming the field, never a `KeyError` deep inside;
* bookkeeping (usage, model names, messages) is `Loose`: a value of the wrong type reads as absent, so a
  provider's quirk in what it reports never costs a user the image it made.

Error bodies come from whatever answered (a proxy, a load balancer), so their models are all `Loose` and
`parse_error_body` never raises: a body that fits nothing leaves the HTTP status to decide.

Validating a decoded answer does not copy its strings (pydantic keeps the very `str` objects), so a
megabyte of base64 costs no more to validate than a short field.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError, ValidatorFunctionWrapHandler, WrapValidator

from bot.errors import BadResponse
from bot.providers.sanitize import clean_message

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)

#: Longest field path named in a user-facing message.
_MAX_FIELD = 60


def _or_none(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    """The value when it fits the field's type, else None (the field then reads as absent)."""
    try:
        return handler(value)
    except ValidationError:
        return None


#: A field that reads as None when absent or of the wrong type.
Loose = Annotated[T | None, WrapValidator(_or_none)]


class WireModel(BaseModel):
    """Base of the answer models: unknown fields ignored, immutable, numbers accepted where text is."""

    model_config = ConfigDict(extra="ignore", frozen=True, coerce_numbers_to_str=True)


def parse(model_cls: type[M], data: Any, provider: str) -> M:
    """A decoded answer as its model, or BadResponse naming the first field that does not fit."""
    try:
        return model_cls.model_validate(data)
    except ValidationError as e:
        raise BadResponse(describe(e, provider), provider=provider) from e


def parse_error_body(model_cls: type[M], body: Any) -> M:
    """An error body read as far as it fits its model (all fields optional); never raises."""
    try:
        return model_cls.model_validate(body)
    except ValidationError:  # not even an object: the HTTP status alone decides
        return model_cls()


def describe(error: ValidationError, provider: str) -> str:
    """A short line a user can read: which field of the answer was missing or unusable."""
    first = error.errors(include_url=False, include_input=False)[0]
    where = pointer(first["loc"], first.get("ctx"))
    if not where:
        return f"{provider} sent an unexpected answer"
    shown = clean_message(where, limit=_MAX_FIELD) or "a field"
    what = "is missing" if first["type"] == "missing" else "has the wrong type"
    return f"{provider} sent an answer the bot cannot use ({shown} {what})"


def pointer(loc: Sequence[int | str], ctx: Mapping[str, Any] | None = None) -> str:
    """A field's place as a JSON pointer (/data/0/url); dots would read as a host name to the cleaner."""
    path = "".join(f"/{part}" for part in loc)
    field = (ctx or {}).get("field")
    return f"{path}/{field}" if field else path
