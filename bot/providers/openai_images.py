"""OpenAI-style /v1/images/* hosts (seeds 000 and 002): generations, edits, upscale, models."""

from __future__ import annotations

import asyncio
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
from bot.providers.base import (
    GenerateRequest,
    GenerateResult,
    ImageData,
    JsonDict,
    ModelSpec,
    UpscaleRequest,
)
from bot.providers.common import ProviderBase, multipart
from bot.providers.http import ErrorMapper, parse_retry_after
from bot.providers.sanitize import clean_message, reason

_SAFETY_CODES = frozenset({"moderation_blocked", "content_policy_violation"})
_TRY_AGAIN = re.compile(r"try again in ([\d.]+)\s*s", re.IGNORECASE)


def _envelope(body: Any) -> tuple[str, str, str]:
    """(message, type, code) from {"error": {...}} or {"error": "..."}; empty strings when absent."""
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        return str(error.get("message") or ""), str(error.get("type") or ""), str(error.get("code") or "")
    if isinstance(error, str):
        return error, "", ""
    return "", "", ""


def _retry_after(headers: Mapping[str, str], message: str) -> float | None:
    """retry-after-ms, Retry-After, or "try again in Xs" in the message."""
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return float(ms) / 1000
        except ValueError:
            pass
    seconds = parse_retry_after(headers.get("Retry-After"))
    if seconds is not None:
        return seconds
    match = _TRY_AGAIN.search(message)
    return float(match.group(1)) if match else None


def map_error(provider: str) -> ErrorMapper:
    """The error mapper for OpenAI-style error envelopes."""

    def mapper(status: int, body: Any, headers: Mapping[str, str]) -> ProviderError:
        message, kind, code = _envelope(body)
        why = reason(status, message, code)
        if code in _SAFETY_CODES or kind == "image_generation_user_error" or "safety system" in message:
            return SafetyBlocked(
                f"Your request was blocked by {provider}'s safety system",
                reason=clean_message(code or kind),
                model_text=clean_message(message),
                provider=provider,
            )
        if status == 401:
            # The message can echo part of the key, so it is not passed on.
            return AuthFailed(
                f"{provider}: the API key was refused; the operator must fix it", provider=provider
            )
        if status == 402 or code in {"insufficient_quota", "insufficient_user_quota"}:
            return OutOfCredits(f"{provider}: the account is out of credits or quota", provider=provider)
        if status == 403:
            return AuthFailed(f"{provider}: access denied ({why})", provider=provider)
        if status == 429:
            delay = _retry_after(headers, message)
            wait = f"; try again in {delay:.0f} s" if delay is not None else "; try again shortly"
            return RateLimited(
                f"{provider} is rate limiting requests{wait}", retry_after=delay, provider=provider
            )
        if status == 504:
            return Timeout(f"{provider} timed out making the image ({why})", provider=provider)
        if status >= 500:
            return Unavailable(f"{provider} failed ({why})", provider=provider)
        return BadRequest(f"{provider} rejected the request ({why})", provider=provider)

    return mapper


class OpenAIImagesProvider(ProviderBase):
    """Any host speaking the OpenAI images API with Nano Banana extensions."""

    kind: ClassVar[str] = "openai-images"

    @property
    def can_upscale(self) -> bool:
        """Only hosts configured with upscale = true have /v1/images/upscale."""
        return self.config.upscale

    def error_mapper(self) -> ErrorMapper:
        """OpenAI-style error envelopes."""
        return map_error(self.name)

    def _options(self, request: GenerateRequest, spec: ModelSpec) -> dict[str, str]:
        """Model, n, ratio, size and format fields shared by generations and edits."""
        fields = {
            "model": spec.name,
            "prompt": request.prompt,
            "n": str(request.count),
            "response_format": self.config.response_format,
        }
        if request.aspect_ratio:
            fields["aspect_ratio"] = request.aspect_ratio
        if request.resolution and len(spec.resolutions) > 1:
            fields["image_size"] = request.resolution
        return fields

    async def generate(self, request: GenerateRequest) -> GenerateResult:
        """Text only → /generations (JSON); with input images → /edits (multipart files)."""
        spec = self.validate(request)
        fields = self._options(request, spec)
        images = [img for i in request.images if (img := i.as_image()) is not None]
        if images:
            data = await self._post("/v1/images/edits", form=multipart(fields, images))
        else:
            body: JsonDict = {**fields, "n": request.count}
            data = await self._post("/v1/images/generations", json_body=body)
        return await self._result(data, spec.name)

    async def upscale(self, request: UpscaleRequest) -> GenerateResult:
        """POST /v1/images/upscale with upscale_factor x2 or x4."""
        if not self.can_upscale:
            return await super().upscale(request)
        image = request.image.as_image()
        if image is None:
            raise BadRequest("the image to upscale has no data", provider=self.name)
        fields = {
            "upscale_factor": f"x{request.factor}",
            "response_format": self.config.response_format,
        }
        data = await self._post("/v1/images/upscale", form=multipart(fields, [image]))
        return await self._result(data, "upscale")

    async def _post(self, path: str, *, json_body: JsonDict | None = None, form: Any = None) -> Any:
        """POST to the host and return its JSON."""
        return await self.send("POST", self.base_url + path, json_body=json_body, form=form)

    async def _result(self, data: Any, model: str) -> GenerateResult:
        """Images from data[].b64_json or data[].url (downloaded concurrently)."""
        items = data.get("data") if isinstance(data, dict) else None
        if not isinstance(items, list) or not items:
            raise NoImageReturned(f"{self.name} answered without any image", provider=self.name)
        images = await asyncio.gather(*(self._image(item) for item in items))
        revised = next(
            (i.get("revised_prompt") for i in items if isinstance(i, dict) and i.get("revised_prompt")),
            None,
        )
        return GenerateResult(
            images=list(images),
            provider=self.name,
            model=model,
            text=None,
            state={"revised_prompt": revised} if revised else {},
            usage=data.get("usage") or {},
        )

    async def _image(self, item: Any) -> ImageData:
        """One data[] entry as image bytes."""
        if isinstance(item, dict) and item.get("b64_json"):
            return await asyncio.to_thread(self.decode_b64_image, str(item["b64_json"]))
        if isinstance(item, dict) and item.get("url"):
            return await self.download(str(item["url"]))
        raise NoImageReturned(f"{self.name} answered with an empty image entry", provider=self.name)

    async def check(self) -> str:
        """GET /v1/models: proves the URL (and the key, where one is needed)."""
        data = await self.send("GET", self.base_url + "/v1/models", retry=False)
        ids = (
            [m.get("id") for m in data.get("data", []) if isinstance(m, dict)]
            if isinstance(data, dict)
            else []
        )
        return f"ok: models {', '.join(map(str, ids)) or '(none listed)'}"
