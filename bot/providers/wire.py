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
megabyte of base64 costs no more to validate than a short field. A large answer goes further (`loads`):
its long base64 values (Gemini's `inlineData.data`, OpenAI's `b64_json`) never become strings at all,
but views into the body (`Base64Blob`), decoded straight from the bytes that arrived: for a 4K image
that skips two 64 MB copies and about half the parsing time.
"""

from __future__ import annotations

import binascii
import json
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    GetCoreSchemaHandler,
    ValidationError,
    ValidatorFunctionWrapHandler,
    WrapValidator,
)
from pydantic_core import CoreSchema, core_schema

from bot.errors import BadResponse
from bot.providers.sanitize import clean_message

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)

#: Longest field path named in a user-facing message.
_MAX_FIELD = 60
#: The keys whose values are base64 images in the wire formats that send images inline.
BASE64_KEYS = (b'"data"', b'"b64_json"')
#: Shorter values are parsed as plain strings (lifting them would save nothing).
LIFT_MIN = 64 * 1024
_PLACEHOLDER = "\x00nanobot-blob:"
_WHITESPACE = b" \t\r\n"


class Base64Blob:
    """A base64 value left in the answer's bytes (a view, not a copy), decoded when it is read."""

    __slots__ = ("view",)

    def __init__(self, view: memoryview) -> None:
        self.view = view

    def __len__(self) -> int:
        """Its length in base64 characters."""
        return len(self.view)

    def decode(self) -> bytes:
        """The bytes it encodes; binascii.Error when it is not valid base64."""
        return binascii.a2b_base64(self.view, strict_mode=True)

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        """Validated as itself (never copied into a string)."""
        return core_schema.is_instance_schema(cls)


#: A field holding base64 text: a string, or in a large answer a Base64Blob.
Base64 = str | Base64Blob


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


def loads(body: bytes) -> Any:
    """json.loads, except that long values of BASE64_KEYS stay in body, as Base64Blob views."""
    spans = _base64_spans(body)
    if not spans:
        return json.loads(body)
    view = memoryview(body)
    pieces: list[bytes | memoryview] = []
    blobs: dict[str, Base64Blob] = {}
    at = 0
    for start, data_start, end in spans:
        token = f"{_PLACEHOLDER}{len(blobs)}"
        blobs[token] = Base64Blob(view[data_start:end])
        pieces += [view[at:start], json.dumps(token)[1:-1].encode()]
        at = end
    pieces.append(view[at:])

    def lift(obj: dict[str, Any]) -> dict[str, Any]:
        """Put each blob back where its placeholder was parsed."""
        for key, value in obj.items():
            if isinstance(value, str) and value.startswith(_PLACEHOLDER) and value in blobs:
                obj[key] = blobs[value]
        return obj

    return json.loads(b"".join(pieces), object_hook=lift)


def _base64_spans(body: bytes) -> list[tuple[int, int, int]]:
    """(start, base64 start, end) of each long, unescaped string value of a BASE64_KEYS key."""
    spans: list[tuple[int, int, int]] = []
    for key in BASE64_KEYS:
        at = body.find(key)
        while at != -1:
            start = _value_start(body, at + len(key))
            end = body.find(b'"', start) if start != -1 else -1
            if end - start >= LIFT_MIN and body.find(b"\\", start, end) == -1:
                data_start = start
                if body.startswith(b"data:", start):  # a data: URL: the base64 follows the comma
                    data_start = body.find(b",", start, end) + 1 or start
                spans.append((start, data_start, end))
            at = body.find(key, max(end, at + 1))
    return sorted(spans)


def _value_start(body: bytes, at: int) -> int:
    """Where a string value starts after a key ending at at (past the colon and the quote), or -1."""
    length = len(body)
    while at < length and body[at] in _WHITESPACE:
        at += 1
    if at >= length or body[at] != ord(":"):
        return -1
    at += 1
    while at < length and body[at] in _WHITESPACE:
        at += 1
    return at + 1 if at < length and body[at] == ord('"') else -1


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
