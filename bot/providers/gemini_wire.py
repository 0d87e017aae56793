"""Gemini generateContent's JSON, parsed once at the edge (camelCase, or snake_case from SDK proxies)."""

from __future__ import annotations

from typing import Any

from pydantic import AliasChoices, AliasGenerator, ConfigDict, Field
from pydantic.alias_generators import to_camel

from bot.providers.base import Sources
from bot.providers.wire import Base64, Loose, WireModel

#: At most this many search queries and pages are kept from one answer's grounding metadata.
MAX_SOURCES = 20
#: Longer titles are cut, longer links dropped (a cut link leads nowhere).
MAX_SOURCE_TITLE = 300
MAX_SOURCE_LINK = 2048


class Google(WireModel):
    """Google's JSON is camelCase; proxies that re-serialise the SDK's objects send snake_case."""

    model_config = ConfigDict(
        alias_generator=AliasGenerator(
            validation_alias=lambda name: AliasChoices(to_camel(name), name), serialization_alias=to_camel
        )
    )


class InlineData(Google):
    """A blob: base64 image bytes (the MIME type is sniffed from the bytes, not trusted)."""

    data: Base64
    mime_type: Loose[str] = None


class Part(Google):
    """One part of a candidate: text or an image, maybe a thought, maybe signed."""

    text: str | None = None
    inline_data: InlineData | None = None
    thought: Loose[bool] = None
    thought_signature: str | None = None


class Content(Google):
    """A candidate's content; `parts` is absent or null when the output was filtered."""

    parts: list[Part] | None = None
    role: Loose[str] = None


class SafetyRating(Google):
    """How a candidate scored on one harm category (kept so a refusal can name what tripped it)."""

    category: Loose[str] = None
    probability: Loose[str] = None
    blocked: Loose[bool] = None


class WebChunk(Google):
    """A web page Google Search grounding drew on."""

    uri: Loose[str] = None
    title: Loose[str] = None


class ImageChunk(Google):
    """An image search result grounding drew on: the page it is on (sourceUri) is the link shown."""

    source_uri: Loose[str] = None
    title: Loose[str] = None


class GroundingChunk(Google):
    """One grounding chunk: a web page or an image search result (other kinds are ignored)."""

    web: Loose[WebChunk] = None
    image: Loose[ImageChunk] = None

    def page(self) -> tuple[str, str] | None:
        """(title, link) of the page it came from, when it names a link that fits."""
        if self.web is not None:
            title, link = self.web.title, self.web.uri
        elif self.image is not None:
            title, link = self.image.title, self.image.source_uri
        else:
            return None
        if not link or len(link) > MAX_SOURCE_LINK:
            return None
        return ((title or "").strip() or link)[:MAX_SOURCE_TITLE], link


class GroundingMetadata(Google):
    """What a search-grounded answer reports; searchEntryPoint (HTML for a web view) is ignored."""

    web_search_queries: Loose[list[Loose[str]]] = None
    image_search_queries: Loose[list[Loose[str]]] = None
    grounding_chunks: Loose[list[Loose[GroundingChunk]]] = None

    def sources(self) -> Sources:
        """The queries and the pages, each once and bounded (an answer is not trusted to be small)."""
        asked = (*(self.web_search_queries or ()), *(self.image_search_queries or ()))
        queries = (q.strip()[:MAX_SOURCE_TITLE] for q in asked if q and q.strip())
        pages = (page for chunk in self.grounding_chunks or () if chunk and (page := chunk.page()))
        return Sources(tuple(dict.fromkeys(queries))[:MAX_SOURCES], tuple(dict.fromkeys(pages))[:MAX_SOURCES])


class Candidate(Google):
    """One candidate answer; citations are ignored."""

    content: Content | None = None
    finish_reason: Loose[str] = None
    finish_message: Loose[str] = None
    safety_ratings: Loose[list[SafetyRating]] = None
    grounding_metadata: Loose[GroundingMetadata] = None


class PromptFeedback(Google):
    """Why the prompt itself was blocked (then there are no candidates)."""

    block_reason: Loose[str] = None
    block_reason_message: Loose[str] = None


class UsageMetadata(Google):
    """Token counts, passed on as the result's usage."""

    prompt_token_count: Loose[int] = None
    candidates_token_count: Loose[int] = None
    thoughts_token_count: Loose[int] = None
    tool_use_prompt_token_count: Loose[int] = None
    total_token_count: Loose[int] = None
    #: Per modality ([{modality, tokenCount}]): text beside an image is priced as text, not image.
    candidates_tokens_details: Loose[list[dict[str, Any]]] = None


class GenerateContentResponse(Google):
    """The answer to models/{model}:generateContent."""

    candidates: list[Candidate] | None = None
    prompt_feedback: Loose[PromptFeedback] = None
    usage_metadata: Loose[UsageMetadata] = None
    model_version: Loose[str] = None


class ModelInfo(Google):
    """The answer to GET models/{model}."""

    name: Loose[str] = None
    display_name: Loose[str] = None


class QuotaViolation(Google):
    """One quota a 429 went over."""

    quota_id: Loose[str] = None
    quota_metric: Loose[str] = None


class ErrorDetail(Google):
    """One google.rpc detail: ErrorInfo (reason), RetryInfo (retryDelay) or QuotaFailure (violations)."""

    kind: Loose[str] = Field(None, alias="@type")
    reason: Loose[str] = None
    retry_delay: Loose[str] = None
    violations: Loose[list[Loose[QuotaViolation]]] = None


class Error(Google):
    """The google.rpc.Status of a failed call."""

    code: Loose[int] = None
    message: Loose[str] = None
    status: Loose[str] = None
    details: Loose[list[Loose[ErrorDetail]]] = None

    @property
    def known_details(self) -> list[ErrorDetail]:
        """The details that are objects."""
        return [d for d in self.details or [] if d is not None]


class ErrorBody(Google):
    """{"error": {...}}."""

    error: Loose[Error] = None
