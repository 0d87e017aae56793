"""Google's Gemini API generateContent, multi-turn with thought signatures."""

from __future__ import annotations

import asyncio
import functools
import re
from collections.abc import Mapping
from typing import Any, ClassVar

from pydantic import AliasChoices, AliasGenerator, ConfigDict, Field
from pydantic.alias_generators import to_camel

from bot.errors import (
    AuthFailed,
    BadRequest,
    NoImageReturned,
    OutOfCredits,
    ProviderError,
    ProviderTimeout,
    ProviderUnavailable,
    RateLimited,
    SafetyBlocked,
)
from bot.providers.base import GenerateRequest, GenerateResult, ImageData, JsonDict, Sources
from bot.providers.common import ProviderBase, fan_out
from bot.providers.gemini_body import build_body, seeded
from bot.providers.http import ErrorMapper, image_from_base64
from bot.providers.sanitize import reason
from bot.providers.wire import Base64, Loose, WireModel, parse, parse_error_body

SAFETY_REASONS = frozenset(
    {
        "SAFETY",
        "IMAGE_SAFETY",
        "PROHIBITED_CONTENT",
        "IMAGE_PROHIBITED_CONTENT",
        "BLOCKLIST",
        "SPII",
        "RECITATION",
        "IMAGE_RECITATION",
    }
)
#: At most this many search queries and pages are kept from one answer's grounding metadata.
MAX_SOURCES = 20
#: Longer titles are cut, longer links dropped (a cut link leads nowhere).
MAX_SOURCE_TITLE = 300
MAX_SOURCE_LINK = 2048
_DURATION = re.compile(r"^\s*([\d.]+)s\s*$")
_RETRY_IN = re.compile(r"retry in ([\d.]+)\s*s", re.IGNORECASE)


# --- the wire format ---------------------------------------------------------------------------------


class _Google(WireModel):
    """Google's JSON is camelCase; proxies that re-serialise the SDK's objects send snake_case."""

    model_config = ConfigDict(
        alias_generator=AliasGenerator(
            validation_alias=lambda name: AliasChoices(to_camel(name), name), serialization_alias=to_camel
        )
    )


class _InlineData(_Google):
    """A blob: base64 image bytes (the MIME type is sniffed from the bytes, not trusted)."""

    data: Base64
    mime_type: Loose[str] = None


class _Part(_Google):
    """One part of a candidate: text or an image, maybe a thought, maybe signed."""

    text: str | None = None
    inline_data: _InlineData | None = None
    thought: Loose[bool] = None
    thought_signature: str | None = None


class _Content(_Google):
    """A candidate's content; `parts` is absent or null when the output was filtered."""

    parts: list[_Part] | None = None
    role: Loose[str] = None


class _SafetyRating(_Google):
    """How a candidate scored on one harm category (kept so a refusal can name what tripped it)."""

    category: Loose[str] = None
    probability: Loose[str] = None
    blocked: Loose[bool] = None


class _WebChunk(_Google):
    """A web page Google Search grounding drew on."""

    uri: Loose[str] = None
    title: Loose[str] = None


class _ImageChunk(_Google):
    """An image search result grounding drew on: the page it is on (sourceUri) is the link shown."""

    source_uri: Loose[str] = None
    title: Loose[str] = None


class _GroundingChunk(_Google):
    """One grounding chunk: a web page or an image search result (other kinds are ignored)."""

    web: Loose[_WebChunk] = None
    image: Loose[_ImageChunk] = None

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


class _GroundingMetadata(_Google):
    """What a search-grounded answer reports; searchEntryPoint (HTML for a web view) is ignored."""

    web_search_queries: Loose[list[Loose[str]]] = None
    image_search_queries: Loose[list[Loose[str]]] = None
    grounding_chunks: Loose[list[Loose[_GroundingChunk]]] = None

    def sources(self) -> Sources:
        """The queries and the pages, each once and bounded (an answer is not trusted to be small)."""
        asked = (*(self.web_search_queries or ()), *(self.image_search_queries or ()))
        queries = (q.strip()[:MAX_SOURCE_TITLE] for q in asked if q and q.strip())
        pages = (page for chunk in self.grounding_chunks or () if chunk and (page := chunk.page()))
        return Sources(tuple(dict.fromkeys(queries))[:MAX_SOURCES], tuple(dict.fromkeys(pages))[:MAX_SOURCES])


class _Candidate(_Google):
    """One candidate answer; citations are ignored."""

    content: _Content | None = None
    finish_reason: Loose[str] = None
    finish_message: Loose[str] = None
    safety_ratings: Loose[list[_SafetyRating]] = None
    grounding_metadata: Loose[_GroundingMetadata] = None


class _PromptFeedback(_Google):
    """Why the prompt itself was blocked (then there are no candidates)."""

    block_reason: Loose[str] = None
    block_reason_message: Loose[str] = None


class _UsageMetadata(_Google):
    """Token counts, passed on as the result's usage."""

    prompt_token_count: Loose[int] = None
    candidates_token_count: Loose[int] = None
    thoughts_token_count: Loose[int] = None
    total_token_count: Loose[int] = None


class _GenerateContentResponse(_Google):
    """The answer to models/{model}:generateContent."""

    candidates: list[_Candidate] | None = None
    prompt_feedback: Loose[_PromptFeedback] = None
    usage_metadata: Loose[_UsageMetadata] = None
    model_version: Loose[str] = None


class _ModelInfo(_Google):
    """The answer to GET models/{model}."""

    name: Loose[str] = None
    display_name: Loose[str] = None


class _QuotaViolation(_Google):
    """One quota a 429 went over."""

    quota_id: Loose[str] = None
    quota_metric: Loose[str] = None


class _ErrorDetail(_Google):
    """One google.rpc detail: ErrorInfo (reason), RetryInfo (retryDelay) or QuotaFailure (violations)."""

    kind: Loose[str] = Field(None, alias="@type")
    reason: Loose[str] = None
    retry_delay: Loose[str] = None
    violations: Loose[list[Loose[_QuotaViolation]]] = None


class _Error(_Google):
    """The google.rpc.Status of a failed call."""

    code: Loose[int] = None
    message: Loose[str] = None
    status: Loose[str] = None
    details: Loose[list[Loose[_ErrorDetail]]] = None

    @property
    def known_details(self) -> list[_ErrorDetail]:
        """The details that are objects."""
        return [d for d in self.details or [] if d is not None]


class _ErrorBody(_Google):
    """{"error": {...}}."""

    error: Loose[_Error] = None


# --- errors --------------------------------------------------------------------------------------------


def _seconds(value: str | None) -> float | None:
    """A proto Duration string such as "36s" or "45.8s" in seconds."""
    match = _DURATION.match(value or "")
    return float(match.group(1)) if match else None


def _retry_delay(error: _Error) -> float | None:
    """RetryInfo.retryDelay from the details, else the "Please retry in Xs" text."""
    for detail in error.known_details:
        if (detail.kind or "").endswith("RetryInfo"):
            return _seconds(detail.retry_delay)
    match = _RETRY_IN.search(error.message or "")
    return float(match.group(1)) if match else None


def _per_day(error: _Error) -> bool:
    """Whether a quota the call went over is a daily one (retrying today is pointless)."""
    return any(
        "PerDay" in f"{violation.quota_id or ''} {violation.quota_metric or ''}"
        for detail in error.known_details
        for violation in detail.violations or []
        if violation is not None
    )


def map_error(provider: str) -> ErrorMapper:
    """The error mapper for this provider's non-2xx answers."""

    def mapper(status: int, body: Any, headers: Mapping[str, str]) -> ProviderError:
        if isinstance(body, list) and body:  # streamed errors arrive as a one-element list
            body = body[0]
        return _classify(provider, status, parse_error_body(_ErrorBody, body).error or _Error())

    return mapper


def _classify(provider: str, status: int, error: _Error) -> ProviderError:
    """Turn one Gemini error envelope into the matching typed error (the raw message only classifies)."""
    message = error.message or ""
    why = reason(status, error.message, error.status)
    reasons = {detail.reason for detail in error.known_details if detail.reason}
    if "API_KEY_INVALID" in reasons or (status == 400 and "API key" in message):
        return AuthFailed(
            f"{provider}: the API key was refused ({why}); the operator must fix the key",
            provider=provider,
        )
    if status in (401, 403):
        return AuthFailed(f"{provider}: access denied ({why})", provider=provider)
    if status == 429:
        delay = _retry_delay(error)
        if _per_day(error):
            return OutOfCredits(f"{provider}: the daily quota is used up", provider=provider)
        wait = f"; try again in {delay:.0f} s" if delay is not None else "; try again shortly"
        return RateLimited(
            f"{provider} is rate limiting requests{wait}", retry_after=delay, provider=provider
        )
    if status == 504:
        return ProviderTimeout(f"{provider} gave up on the request (deadline exceeded)", provider=provider)
    if status >= 500:
        return ProviderUnavailable(f"{provider} is unavailable ({why})", provider=provider)
    if status == 404:
        return BadRequest(f"{provider}: model not found ({why})", provider=provider)
    return BadRequest(f"{provider} rejected the request ({why})", provider=provider)


# --- the interface -------------------------------------------------------------------------------------


class GeminiProvider(ProviderBase):
    """Talks to models/{model}:generateContent with x-goog-api-key."""

    kind: ClassVar[str] = "gemini"

    def auth_headers(self, key: str | None) -> dict[str, str]:
        """The key header, when a key is configured."""
        return {"x-goog-api-key": key} if key else {}

    def error_mapper(self) -> ErrorMapper:
        """Google's error envelopes."""
        return map_error(self.name)

    def _url(self, model: str, method: str = ":generateContent") -> str:
        """The v1beta model URL."""
        return f"{self.base_url}/v1beta/models/{model}{method}"

    async def generate(self, request: GenerateRequest) -> GenerateResult:
        """One call per requested image (Gemini returns one), run concurrently."""
        spec = self.validate(request)
        bodies = iter(seeded(build_body(request, spec), request.count))
        found: list[Sources] = []

        async def call() -> GenerateResult:
            result = await self._call(spec.name, next(bodies))
            found.append(result.sources)
            return result

        result = await fan_out(call, request.count)
        result.sources = functools.reduce(Sources.merged, found, Sources())  # each image searched
        return result

    async def _call(self, model: str, body: JsonDict) -> GenerateResult:
        """Send one generateContent request and read its answer."""
        data = await self.send("POST", self._url(model), json_body=body)
        return await asyncio.to_thread(self.read_answer, data, model)  # base64 decoding is heavy

    def read_answer(self, data: Any, model: str) -> GenerateResult:
        """Read images, text and signatures; turn image-less answers into typed errors."""
        answer = parse(_GenerateContentResponse, data, self.name)
        if not answer.candidates:
            raise self._blocked_prompt(answer.prompt_feedback or _PromptFeedback())
        candidate = answer.candidates[0]
        images, texts, state_parts = self._read_parts(candidate)
        text = "\n".join(texts).strip() or None
        if not images:
            raise self._no_image(candidate, text)
        usage = answer.usage_metadata
        return GenerateResult(
            images=images,
            provider=self.name,
            model=answer.model_version or model,
            text=text,
            state={"parts": state_parts},
            usage=usage.model_dump(by_alias=True, exclude_none=True) if usage else {},
            sources=candidate.grounding_metadata.sources() if candidate.grounding_metadata else Sources(),
        )

    def _read_parts(self, candidate: _Candidate) -> tuple[list[ImageData], list[str], list[JsonDict]]:
        """Non-thought parts in order: images, texts, and what to replay (with signatures)."""
        parts = candidate.content.parts if candidate.content else None
        images: list[ImageData] = []
        texts: list[str] = []
        state: list[JsonDict] = []
        for part in parts or []:
            if part.thought:
                continue
            entry: JsonDict
            if part.inline_data is not None and part.inline_data.data:
                images.append(image_from_base64(part.inline_data.data, self.name))
                entry = {"image": len(images) - 1}
            elif part.text is not None:
                texts.append(part.text)
                entry = {"text": part.text}
            else:
                continue
            if part.thought_signature is not None:
                entry["thoughtSignature"] = part.thought_signature
            state.append(entry)
        return images, texts, state

    def _blocked_prompt(self, feedback: _PromptFeedback) -> ProviderError:
        """No candidates: the prompt itself was blocked."""
        reason = feedback.block_reason
        if not reason:
            return NoImageReturned(f"{self.name} returned no result at all", provider=self.name)
        detail = feedback.block_reason_message
        return SafetyBlocked(
            f"Your prompt was blocked by {self.name}'s safety filters ({reason})"
            + (f": {detail}" if detail else ""),
            reason=reason,
            model_text=detail,
            provider=self.name,
        )

    def _no_image(self, candidate: _Candidate, text: str | None) -> ProviderError:
        """A candidate without an image: blocked, or the model chose not to draw."""
        reason = candidate.finish_reason or "UNKNOWN"
        said = candidate.finish_message or text
        if reason in SAFETY_REASONS:
            return SafetyBlocked(
                f"The image was blocked by {self.name}'s safety filters ({reason})"
                + (f". The model said: {said}" if said else ""),
                reason=reason,
                model_text=said,
                provider=self.name,
            )
        return NoImageReturned(
            f"{self.name} returned no image ({reason})" + (f". The model said: {said}" if said else ""),
            reason=reason,
            model_text=said,
            provider=self.name,
        )

    async def check(self) -> str:
        """Fetch the default model's metadata: proves the URL and the key without generating."""
        model = self.models[0]
        info = parse(_ModelInfo, await self.send("GET", self._url(model, ""), retry=False), self.name)
        return f"ok: {info.display_name or info.name or model}"
