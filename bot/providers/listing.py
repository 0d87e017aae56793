"""`python -m bot models`: each provider's models, from its own list endpoint, with the limits applied.

Gemini lists its models at `GET /v1beta/models` (`models.list`, paged with `pageToken`) and
OpenAI-style hosts at `GET /v1/models`; nano-banana-pro.net and the task API have no list endpoint,
so their configured models are shown. Every model is shown with the limits the bot will enforce on
it (`ProviderBase.spec`: the catalogue in models.py, else its kind's conservative fallback, with the
provider entry's overrides), so an operator sees at once which models the bot does not know.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

import yarl
from pydantic import AliasChoices, AliasGenerator, ConfigDict
from pydantic.alias_generators import to_camel

from bot.errors import NanoBotError
from bot.providers.base import ImageProvider
from bot.providers.common import ProviderBase
from bot.providers.models import is_known
from bot.providers.wire import Loose, WireModel, parse

#: Gemini returns at most 1000 models per page, 50 when pageSize is not given.
GEMINI_PAGE_SIZE = 1000
#: A server that keeps handing out page tokens is not followed past this many pages.
MAX_PAGES = 50
#: Words in a model id that suggest it makes images (ids of known models count too).
IMAGE_HINTS = ("image", "banana", "imagen")
HEADERS = ("PROVIDER", "MODEL", "KNOWN", "INPUTS", "RESOLUTIONS", "RATIOS", "GROUNDING", "NOTE")


class _Google(WireModel):
    """Google's JSON is camelCase (proxies may send snake_case)."""

    model_config = ConfigDict(
        alias_generator=AliasGenerator(validation_alias=lambda n: AliasChoices(to_camel(n), n))
    )


class _GeminiModel(_Google):
    """One entry of models.list: `name` is "models/{id}"."""

    name: Loose[str] = None
    supported_generation_methods: Loose[list[str]] = None


class _GeminiPage(_Google):
    """One page of models.list: `models` is omitted when empty, `nextPageToken` on the last page."""

    models: Loose[list[Loose[_GeminiModel]]] = None
    next_page_token: Loose[str] = None


class _OpenAIModel(WireModel):
    """One /v1/models entry."""

    id: Loose[str] = None


class _OpenAIList(WireModel):
    """The answer to GET /v1/models: `data` is required (without it this is not a model list)."""

    data: list[Loose[_OpenAIModel]]


@dataclass(frozen=True, slots=True)
class Listed:
    """A model as its provider lists it: its id, and whether it can make images as far as we can tell."""

    model: str
    images: bool = True


@dataclass(frozen=True, slots=True)
class Row:
    """One line of the table: a provider's model and the limits the bot applies to it."""

    provider: str
    model: str
    known: bool
    max_inputs: int
    resolutions: tuple[str, ...]
    ratios: tuple[str, ...]
    grounding: bool
    note: str = ""


@dataclass(frozen=True, slots=True)
class Listing:
    """One provider's rows, or the reason it could not be listed (a message fit to show)."""

    provider: str
    kind: str
    rows: tuple[Row, ...] = ()
    error: str | None = None


def looks_like_images(model: str) -> bool:
    """Whether a model id suggests an image model (every known model does)."""
    lowered = model.lower()
    return is_known(model) or any(hint in lowered for hint in IMAGE_HINTS)


async def gemini_models(provider: ProviderBase) -> list[Listed]:
    """Every page of GET /v1beta/models; a model without generateContent cannot make images."""
    key = provider.config.api_keys[0].get_secret_value() if provider.config.api_keys else None
    url = yarl.URL(f"{provider.base_url}/v1beta/models")
    listed: list[Listed] = []
    token: str | None = None
    seen: set[str] = set()
    for _ in range(MAX_PAGES):
        query = {"pageSize": str(GEMINI_PAGE_SIZE), **({"pageToken": token} if token else {})}
        data = await provider.send_with(key, "GET", str(url.with_query(query)))
        page = parse(_GeminiPage, data, provider.name)
        for entry in page.models or []:
            if entry is not None and entry.name:
                methods = entry.supported_generation_methods or []
                model = entry.name.removeprefix("models/")
                listed.append(Listed(model, "generateContent" in methods and looks_like_images(model)))
        token = page.next_page_token
        if not token or token in seen:  # the last page, or a server going round in circles
            break
        seen.add(token)
    return listed


async def openai_models(provider: ProviderBase) -> list[Listed]:
    """GET /v1/models (relays list chat models too: only the image-like ids count as image models)."""
    key = provider.config.api_keys[0].get_secret_value() if provider.config.api_keys else None
    data = await provider.send_with(key, "GET", f"{provider.base_url}/v1/models")
    answer = parse(_OpenAIList, data, provider.name)
    return [Listed(e.id, looks_like_images(e.id)) for e in answer.data if e is not None and e.id]


def _row(provider: ImageProvider, model: str, note: str) -> Row:
    """The limits the bot applies to this model on this provider (the entry's overrides included)."""
    spec = provider.spec(model)
    return Row(
        provider.name,
        model,
        is_known(model),
        spec.max_input_images,
        spec.resolutions,
        spec.aspect_ratios,
        spec.grounding,
        note,
    )


def _rows(provider: ImageProvider, listed: list[Listed] | None, everything: bool) -> tuple[Row, ...]:
    """Listed image models (every listed model with everything), then configured ones not listed."""
    configured = provider.models
    if listed is None:  # no list endpoint
        return tuple(_row(provider, m, "configured (no list endpoint)") for m in configured)
    rows = []
    for entry in listed:
        chosen = entry.model in configured
        if not (entry.images or chosen or everything):
            continue
        notes = ["configured" if chosen else "", "" if entry.images else "not an image model?"]
        rows.append(_row(provider, entry.model, ", ".join(n for n in notes if n)))
    ids = {entry.model for entry in listed}
    rows += [_row(provider, m, "configured, not listed by the provider") for m in configured if m not in ids]
    return tuple(rows)


async def list_provider(provider: ImageProvider, *, everything: bool = False) -> Listing:
    """One provider's models and limits; a failure is kept as its message, never raised."""
    listed: list[Listed] | None = None
    try:
        if isinstance(provider, ProviderBase) and provider.kind == "gemini":
            listed = await gemini_models(provider)
        elif isinstance(provider, ProviderBase) and provider.kind == "openai-images":
            listed = await openai_models(provider)
    except NanoBotError as e:
        return Listing(provider.name, provider.kind, error=e.user_message)
    return Listing(provider.name, provider.kind, _rows(provider, listed, everything))


async def list_providers(providers: Sequence[ImageProvider], *, everything: bool = False) -> list[Listing]:
    """Every provider's listing, fetched at once, in configured order."""
    return list(await asyncio.gather(*(list_provider(p, everything=everything) for p in providers)))


def _cells(row: Row) -> tuple[str, ...]:
    """A row as the table's text cells."""
    return (
        row.provider,
        row.model,
        "yes" if row.known else "no",
        str(row.max_inputs),
        ",".join(row.resolutions),
        ",".join(row.ratios),
        "yes" if row.grounding else "no",
        row.note,
    )


def table(rows: Sequence[Row]) -> str:
    """The rows as aligned columns under a header line."""
    lines = [HEADERS, *(_cells(r) for r in rows)]
    widths = [max(len(line[i]) for line in lines) for i in range(len(HEADERS))]
    text = ["  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip() for line in lines]
    return "\n".join(text)
