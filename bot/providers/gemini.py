"""Google's Gemini generateContent wire format (seed 001), multi-turn with thought signatures."""

from __future__ import annotations

import asyncio
import base64
import re
from collections.abc import Mapping
from typing import Any, ClassVar

from bot.errors import (
    AuthFailed,
    BadRequest,
    NoImageReturned,
    OutOfCredits,
    ProviderError,
    RateLimited,
    SafetyBlocked,
    Timeout,
    Unavailable,
)
from bot.providers.base import GenerateRequest, GenerateResult, ImageData, JsonDict, ModelSpec, Turn
from bot.providers.common import ProviderBase, fan_out
from bot.providers.http import ErrorMapper
from bot.providers.sanitize import reason

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
_RESOLUTION_WIRE = {"0.5K": "512", "1K": "1K", "2K": "2K", "4K": "4K"}
_DURATION = re.compile(r"^\s*([\d.]+)s\s*$")
_RETRY_IN = re.compile(r"retry in ([\d.]+)\s*s", re.IGNORECASE)


def _inline(image: ImageData, signature: str | None = None) -> JsonDict:
    """An inlineData part, with its thought signature when it had one."""
    part: JsonDict = {"inlineData": {"mimeType": image.mime, "data": base64.b64encode(image.data).decode()}}
    if signature is not None:
        part["thoughtSignature"] = signature
    return part


def _turn_parts(turn: Turn) -> list[JsonDict]:
    """Rebuild a stored turn's parts, model parts with their signatures in their original order."""
    recorded = turn.state.get("parts") if turn.role == "model" else None
    if not recorded:
        parts: list[JsonDict] = [{"text": turn.text}] if turn.text else []
        return parts + [_inline(img) for img in turn.images]
    parts = []
    for entry in recorded:
        signature = entry.get("thoughtSignature")
        if "image" in entry:
            index = int(entry["image"])
            if index < len(turn.images):
                parts.append(_inline(turn.images[index], signature))
        elif "text" in entry:
            part: JsonDict = {"text": entry["text"]}
            if signature is not None:
                part["thoughtSignature"] = signature
            parts.append(part)
    return parts


def build_body(request: GenerateRequest, spec: ModelSpec) -> JsonDict:
    """The generateContent request body: history, then the new user turn, then image options."""
    contents = [
        {"role": turn.role, "parts": parts} for turn in request.history if (parts := _turn_parts(turn))
    ]
    user_parts: list[JsonDict] = [{"text": request.prompt}]
    user_parts += [_inline(img) for i in request.images if (img := i.as_image()) is not None]
    contents.append({"role": "user", "parts": user_parts})
    image_config: JsonDict = {}
    if request.aspect_ratio:
        image_config["aspectRatio"] = request.aspect_ratio
    if request.resolution and len(spec.resolutions) > 1:
        image_config["imageSize"] = _RESOLUTION_WIRE[request.resolution]
    config: JsonDict = {"responseModalities": ["TEXT", "IMAGE"]}
    if image_config:
        config["imageConfig"] = image_config
    return {"contents": contents, "generationConfig": config}


def _seconds(value: str | None) -> float | None:
    """A proto Duration string such as "36s" or "45.8s" in seconds."""
    match = _DURATION.match(value or "")
    return float(match.group(1)) if match else None


def _retry_delay(error: JsonDict) -> float | None:
    """RetryInfo.retryDelay from the details, else the "Please retry in Xs" text."""
    for detail in error.get("details") or []:
        if isinstance(detail, dict) and str(detail.get("@type", "")).endswith("RetryInfo"):
            return _seconds(detail.get("retryDelay"))
    match = _RETRY_IN.search(str(error.get("message", "")))
    return float(match.group(1)) if match else None


def _reasons(error: JsonDict) -> set[str]:
    """The ErrorInfo reasons in an error's details."""
    return {
        str(d.get("reason")) for d in error.get("details") or [] if isinstance(d, dict) and d.get("reason")
    }


def map_error(provider: str) -> ErrorMapper:
    """The error mapper for this provider's non-2xx answers."""

    def mapper(status: int, body: Any, headers: Mapping[str, str]) -> ProviderError:
        if isinstance(body, list) and body:
            body = body[0]
        error = body.get("error") if isinstance(body, dict) else None
        error = error if isinstance(error, dict) else {}
        return _classify(provider, status, error, str(error.get("message") or ""))

    return mapper


def _classify(provider: str, status: int, error: JsonDict, message: str) -> ProviderError:
    """Turn one Gemini error envelope into the matching typed error (the raw message only classifies)."""
    why = reason(status, error.get("message"), error.get("status"))
    reasons = _reasons(error)
    if "API_KEY_INVALID" in reasons or (status == 400 and "API key" in message):
        return AuthFailed(
            f"{provider}: the API key was refused ({why}); the operator must fix the key",
            provider=provider,
        )
    if status in (401, 403):
        return AuthFailed(f"{provider}: access denied ({why})", provider=provider)
    if status == 429:
        delay = _retry_delay(error)
        if "PerDay" in str(error.get("details", "")):
            return OutOfCredits(f"{provider}: the daily quota is used up", provider=provider)
        wait = f"; try again in {delay:.0f} s" if delay is not None else "; try again shortly"
        return RateLimited(
            f"{provider} is rate limiting requests{wait}", retry_after=delay, provider=provider
        )
    if status == 504:
        return Timeout(f"{provider} gave up on the request (deadline exceeded)", provider=provider)
    if status >= 500:
        return Unavailable(f"{provider} is unavailable ({why})", provider=provider)
    if status == 404:
        return BadRequest(f"{provider}: model not found ({why})", provider=provider)
    return BadRequest(f"{provider} rejected the request ({why})", provider=provider)


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
        body = build_body(request, spec)
        return await fan_out(lambda: self._call(spec.name, body), request.count)

    async def _call(self, model: str, body: JsonDict) -> GenerateResult:
        """Send one generateContent request and parse its answer."""
        data = await self.send("POST", self._url(model), json_body=body)
        return await asyncio.to_thread(self.parse, data, model)  # base64 decoding is heavy

    def parse(self, data: Any, model: str) -> GenerateResult:
        """Read images, text and signatures; turn image-less answers into typed errors."""
        if not isinstance(data, dict):
            raise Unavailable(f"{self.name} sent an unexpected answer", provider=self.name)
        candidates = data.get("candidates") or []
        if not candidates:
            raise self._blocked_prompt(data.get("promptFeedback") or {})
        candidate = candidates[0] if isinstance(candidates[0], dict) else {}
        images, texts, state_parts = self._read_parts(candidate)
        text = "\n".join(texts).strip() or None
        if not images:
            raise self._no_image(candidate, text)
        return GenerateResult(
            images=images,
            provider=self.name,
            model=str(data.get("modelVersion") or model),
            text=text,
            state={"parts": state_parts},
            usage=data.get("usageMetadata") or {},
        )

    def _read_parts(self, candidate: JsonDict) -> tuple[list[ImageData], list[str], list[JsonDict]]:
        """Non-thought parts in order: images, texts, and what to replay (with signatures)."""
        content = candidate.get("content") or {}
        images: list[ImageData] = []
        texts: list[str] = []
        state: list[JsonDict] = []
        for part in content.get("parts") or []:
            if not isinstance(part, dict) or part.get("thought"):
                continue
            signature = part.get("thoughtSignature", part.get("thought_signature"))
            inline = part.get("inlineData") or part.get("inline_data")
            entry: JsonDict
            if isinstance(inline, dict) and inline.get("data"):
                images.append(self.decode_b64_image(str(inline["data"])))
                entry = {"image": len(images) - 1}
            elif isinstance(part.get("text"), str):
                texts.append(part["text"])
                entry = {"text": part["text"]}
            else:
                continue
            if signature is not None:
                entry["thoughtSignature"] = signature
            state.append(entry)
        return images, texts, state

    def _blocked_prompt(self, feedback: JsonDict) -> ProviderError:
        """No candidates: the prompt itself was blocked."""
        reason = feedback.get("blockReason")
        if not reason:
            return NoImageReturned(f"{self.name} returned no result at all", provider=self.name)
        detail = feedback.get("blockReasonMessage")
        return SafetyBlocked(
            f"Your prompt was blocked by {self.name}'s safety filters ({reason})"
            + (f": {detail}" if detail else ""),
            reason=str(reason),
            model_text=detail,
            provider=self.name,
        )

    def _no_image(self, candidate: JsonDict, text: str | None) -> ProviderError:
        """A candidate without an image: blocked, or the model chose not to draw."""
        reason = str(candidate.get("finishReason") or "UNKNOWN")
        said = candidate.get("finishMessage") or text
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
        data = await self.send("GET", self._url(model, ""), retry=False)
        shown = data.get("displayName") or data.get("name") or model if isinstance(data, dict) else model
        return f"ok: {shown}"
