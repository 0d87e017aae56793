"""Google Search grounding in the fake Gemini: which models take the googleSearch tool, and the
groundingMetadata a grounded answer carries (webSearchQueries, searchEntryPoint, groundingChunks)."""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import quote_plus

from tests.fakes.providers.base import random_id
from tests.fakes.providers.gemini_request import ModelSpec, invalid, snake

#: What the fake's searches find by default, as (title, uri): like Google's, each title is the site's
#: domain and each uri a grounding redirect (tests replace FakeGemini.grounding_pages to vary them).
REDIRECT = "https://vertexaisearch.cloud.google.com/grounding-api-redirect/"
DEFAULT_PAGES = (("wikipedia.org", f"{REDIRECT}lighthouse-wiki"), ("nps.gov", f"{REDIRECT}lighthouse-nps"))
SEARCH_KINDS = {"webSearch": "web", "imageSearch": "image"}


def search_types(tools: list[dict[str, Any]], model: str, spec: ModelSpec) -> tuple[str, ...]:
    """The searches a request's tools ask for ("web", "image"); 400 for tools the model does not take."""
    searches: tuple[str, ...] = ()
    for i, tool in enumerate(tools):
        for name, config in tool.items():
            if name != "googleSearch":
                raise invalid(
                    f"* GenerateContentRequest.tools[{i}].{snake(name)}: not supported by {model}.\n"
                )
            searches = _google_search(config, model, spec, f"tools[{i}].google_search")
    return searches


def _google_search(config: dict[str, Any], model: str, spec: ModelSpec, path: str) -> tuple[str, ...]:
    """One googleSearch tool: web search unless searchTypes names others; only on grounding models."""
    if not spec.grounding:
        raise invalid(f"* GenerateContentRequest.{path}: Search Grounding is not supported for {model}.\n")
    kinds = config.get("searchTypes") or {"webSearch": {}}  # not set: web search, the documented default
    if "imageSearch" in kinds and not spec.image_search:
        raise invalid(
            f"* GenerateContentRequest.{path}.search_types.image_search: Image search is not supported "
            f"for {model}.\n"
        )
    return tuple(SEARCH_KINDS[kind] for kind in kinds)


def grounding_metadata(
    prompt: str, searches: tuple[str, ...], pages: list[tuple[str, str]] | tuple[tuple[str, str], ...]
) -> dict[str, Any]:
    """candidates[0].groundingMetadata of a grounded answer: the queries run, the pages found, and the
    Search Suggestions chip (HTML for a web view, and the (query, url) pairs as base64 JSON)."""
    query = " ".join(prompt.split()[:8]) or "image"
    metadata: dict[str, Any] = {}
    chunks: list[dict[str, Any]] = []
    if "web" in searches:
        metadata["webSearchQueries"] = [query]
        chunks += [{"web": {"uri": uri, "title": title}} for title, uri in pages]
    if "image" in searches:
        metadata["imageSearchQueries"] = [f"{query} photo"]
        chunks += [_image_chunk(title, uri) for title, uri in pages[:1]]
    search_url = f"https://www.google.com/search?q={quote_plus(query)}"
    blob = json.dumps([[query, search_url]]).encode()
    metadata["searchEntryPoint"] = {
        "renderedContent": f'<style>.container{{display:flex}}</style><div class="container">'
        f'<a class="chip" href="{search_url}">{query}</a></div>',
        "sdkBlob": base64.b64encode(blob).decode(),
    }
    metadata["groundingChunks"] = chunks
    return metadata


def _image_chunk(title: str, uri: str) -> dict[str, Any]:
    """An image search result: the page it is on, and the image itself."""
    image_uri = f"https://images.example.org/{random_id()}.jpg"
    return {"image": {"sourceUri": uri, "imageUri": image_uri, "title": title, "domain": title}}
