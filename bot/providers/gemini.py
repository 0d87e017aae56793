"""Google's Gemini API generateContent, multi-turn with thought signatures."""

from __future__ import annotations

import asyncio
import functools
import re
from collections.abc import Mapping
from typing import Any, ClassVar

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
from bot.i18n import Text
from bot.providers.base import GenerateRequest, GenerateResult, ImageData, JsonDict, PreviewHook, Sources
from bot.providers.common import ProviderBase, fan_out
from bot.providers.gemini_body import MB, Draft, Move, seeded, sized_body
from bot.providers.gemini_files import GeminiFiles
from bot.providers.gemini_stream import STREAM_METHOD, stream_answer
from bot.providers.gemini_wire import (
    Candidate,
    Error,
    ErrorBody,
    GenerateContentResponse,
    ModelInfo,
    PromptFeedback,
)
from bot.providers.http import ErrorMapper, image_from_base64
from bot.providers.pacing import deferred_send
from bot.providers.sanitize import reason
from bot.providers.wire import parse, parse_error_body

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
_DURATION = re.compile(r"^\s*([\d.]+)s\s*$")
_RETRY_IN = re.compile(r"retry in ([\d.]+)\s*s", re.IGNORECASE)


# --- errors --------------------------------------------------------------------------------------------


def _seconds(value: str | None) -> float | None:
    """A proto Duration string such as "36s" or "45.8s" in seconds."""
    match = _DURATION.match(value or "")
    return float(match.group(1)) if match else None


def _retry_delay(error: Error) -> float | None:
    """RetryInfo.retryDelay from the details, else the "Please retry in Xs" text."""
    for detail in error.known_details:
        if (detail.kind or "").endswith("RetryInfo"):
            return _seconds(detail.retry_delay)
    match = _RETRY_IN.search(error.message or "")
    return float(match.group(1)) if match else None


def _per_day(error: Error) -> bool:
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
        return _classify(provider, status, parse_error_body(ErrorBody, body).error or Error())

    return mapper


def _classify(provider: str, status: int, error: Error) -> ProviderError:
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
        return ProviderTimeout(Text("provider.timeout.deadline", provider=provider), provider=provider)
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

    @functools.cached_property
    def files(self) -> GeminiFiles:
        """The Files API client and its cache of uploads (for requests over the inline limit)."""
        return GeminiFiles(self)

    async def generate(self, request: GenerateRequest) -> GenerateResult:
        """One call per requested image (Gemini returns one), run concurrently."""
        spec = self.validate(request)
        limit = int(self.config.inline_limit_mb * MB)  # megabytes of base64: built in a thread
        sized = await asyncio.to_thread(sized_body, request, spec, limit, self.files.uri_room)
        drafts = iter(sized.draft.but(s) for s in seeded(sized.draft.skeleton, request.count))
        found: list[Sources] = []
        preview = request.on_preview if spec.thinking_levels else None  # only thinking models stream

        async def call() -> GenerateResult:
            result = await self._call(spec.name, next(drafts), sized.moves, preview)
            found.append(result.sources)
            return result

        result = await fan_out(call, request.count)
        result.sources = functools.reduce(Sources.merged, found, Sources())  # each image searched
        return result

    async def _call(
        self, model: str, draft: Draft, moves: tuple[Move, ...] = (), preview: PreviewHook | None = None
    ) -> GenerateResult:
        """Send one generateContent request and read its answer (its body encoded in a thread)."""
        if moves:  # files belong to the uploading key's project: one key for the uploads and the call
            url = self._url(model)
            with deferred_send():  # the generateContent call after the uploads says when it is sent
                data = await self.keys.run(lambda key: self.files.generate(key, url, draft, moves))
        elif preview is not None:  # streamed: the thought images are shown as they arrive
            body = await asyncio.to_thread(draft.encode)
            data = await stream_answer(self, self._url(model, STREAM_METHOD), body, preview)
        else:
            body = await asyncio.to_thread(draft.encode)
            data = await self.send("POST", self._url(model), body=body)
        return await asyncio.to_thread(self.read_answer, data, model)  # base64 decoding is heavy

    def read_answer(self, data: Any, model: str) -> GenerateResult:
        """Read images, text and signatures; turn image-less answers into typed errors."""
        answer = parse(GenerateContentResponse, data, self.name)
        if not answer.candidates:
            raise self._blocked_prompt(answer.prompt_feedback or PromptFeedback())
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

    def _read_parts(self, candidate: Candidate) -> tuple[list[ImageData], list[str], list[JsonDict]]:
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

    def _blocked_prompt(self, feedback: PromptFeedback) -> ProviderError:
        """No candidates: the prompt itself was blocked."""
        reason = feedback.block_reason
        if not reason:
            return NoImageReturned(Text("provider.no_result", provider=self.name), provider=self.name)
        detail = feedback.block_reason_message
        blocked = Text("provider.safety.prompt", provider=self.name, reason=reason)
        if detail:
            blocked = Text("provider.safety.prompt_said", provider=self.name, reason=reason, detail=detail)
        return SafetyBlocked(blocked, reason=reason, model_text=detail, provider=self.name)

    def _no_image(self, candidate: Candidate, text: str | None) -> ProviderError:
        """A candidate without an image: blocked, or the model chose not to draw."""
        reason = candidate.finish_reason or "UNKNOWN"
        said = candidate.finish_message or text
        if reason in SAFETY_REASONS:
            blocked = Text("provider.safety.image", provider=self.name, reason=reason)
            if said:
                blocked = Text("provider.safety.image_said", provider=self.name, reason=reason, said=said)
            return SafetyBlocked(blocked, reason=reason, model_text=said, provider=self.name)
        empty = Text("provider.no_image.bare", provider=self.name, reason=reason)
        if said:
            empty = Text("provider.no_image.said", provider=self.name, reason=reason, said=said)
        return NoImageReturned(empty, reason=reason, model_text=said, provider=self.name)

    async def check(self) -> str:
        """Fetch the default model's metadata: proves the URL and the key without generating."""
        model = self.models[0]
        info = parse(ModelInfo, await self.send("GET", self._url(model, ""), retry=False), self.name)
        return f"ok: {info.display_name or info.name or model}"
