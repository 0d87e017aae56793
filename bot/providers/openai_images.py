"""OpenAI-style images API hosts (/v1/images/*): generations, edits, upscale, models."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from typing import Any, ClassVar, Self

from pydantic import StrictStr, model_validator
from pydantic_core import PydanticCustomError

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
from bot.providers.base import (
    GenerateRequest,
    GenerateResult,
    ImageData,
    JsonDict,
    ModelSpec,
    UpscaleRequest,
)
from bot.providers.common import ProviderBase, multipart
from bot.providers.http import ErrorMapper, image_from_base64, parse_retry_after
from bot.providers.sanitize import clean_message, reason
from bot.providers.wire import Base64, Loose, WireModel, parse, parse_error_body

_SAFETY_CODES = frozenset({"moderation_blocked", "content_policy_violation"})
_TRY_AGAIN = re.compile(r"try again in ([\d.]+)\s*s", re.IGNORECASE)


class _Image(WireModel):
    """One data[] entry: a URL to download or the image as base64 (either will do, one is needed)."""

    url: str | None = None
    b64_json: Base64 | None = None
    revised_prompt: Loose[str] = None

    @model_validator(mode="after")
    def _has_image(self) -> Self:
        """An entry with neither field has no image to give."""
        if not self.url and not self.b64_json:
            raise PydanticCustomError("missing", "Field required", {"field": "url or b64_json"})
        return self


class _ImagesResponse(WireModel):
    """The answer to /v1/images/generations, /edits and /upscale."""

    data: list[_Image] | None = None
    usage: Loose[dict[str, Any]] = None


class _Model(WireModel):
    """One /v1/models entry."""

    id: Loose[str] = None


class _ModelList(WireModel):
    """The answer to GET /v1/models."""

    data: Loose[list[Loose[_Model]]] = None


class _Error(WireModel):
    """{"message", "type", "code"}; relays send `code` as a string or a number."""

    message: Loose[str] = None
    type: Loose[str] = None
    code: Loose[str] = None


class _ErrorBody(WireModel):
    """{"error": {...}}, or {"error": "text"} from simpler relays."""

    error: Loose[_Error | StrictStr] = None

    def fields(self) -> tuple[str, str, str]:
        """(message, type, code), empty strings when absent."""
        if isinstance(self.error, _Error):
            return self.error.message or "", self.error.type or "", self.error.code or ""
        return self.error or "", "", ""


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
        message, kind, code = parse_error_body(_ErrorBody, body).fields()
        why = reason(status, message, code)
        if code in _SAFETY_CODES or kind == "image_generation_user_error" or "safety system" in message:
            return SafetyBlocked(
                Text("provider.safety.system", provider=provider),
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
            return ProviderTimeout(
                Text("provider.timeout.making", provider=provider, why=why), provider=provider
            )
        if status >= 500:
            return ProviderUnavailable(f"{provider} failed ({why})", provider=provider)
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
            raise BadRequest(Text("provider.upscale.no_data"), provider=self.name)
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
        # Validation keeps the base64 strings as they are (no copy), so it may run on the event loop.
        answer = parse(_ImagesResponse, data, self.name)
        if not answer.data:
            raise NoImageReturned(Text("provider.no_image.any", provider=self.name), provider=self.name)
        images = await asyncio.gather(*(self._image(item) for item in answer.data))
        revised = next((item.revised_prompt for item in answer.data if item.revised_prompt), None)
        return GenerateResult(
            images=list(images),
            provider=self.name,
            model=model,
            text=None,
            state={"revised_prompt": revised} if revised else {},
            usage=answer.usage or {},
        )

    async def _image(self, item: _Image) -> ImageData:
        """One data[] entry as image bytes."""
        if item.b64_json:
            return await asyncio.to_thread(image_from_base64, item.b64_json, self.name)
        return await self.download(item.url or "")

    async def check(self) -> str:
        """GET /v1/models: proves the URL (and the key, where one is needed)."""
        data = await self.send("GET", self.base_url + "/v1/models", retry=False)
        listed = parse(_ModelList, data, self.name).data or []
        ids = [entry.id for entry in listed if entry is not None and entry.id is not None]
        return f"ok: models {', '.join(ids) or '(none listed)'}"
