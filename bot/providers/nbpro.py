"""The nano-banana-pro.net generate API: one synchronous call that answers with image URLs."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any, ClassVar

from pydantic import StrictStr

from bot.errors import (
    AuthFailed,
    BadRequest,
    NoImageReturned,
    OutOfCredits,
    ProviderError,
    ProviderUnavailable,
    RateLimited,
    SafetyBlocked,
)
from bot.i18n import Text
from bot.providers.base import GenerateRequest, GenerateResult, JsonDict
from bot.providers.common import ProviderBase, fan_out, multipart
from bot.providers.http import ErrorMapper, parse_retry_after
from bot.providers.sanitize import clean_message, reason
from bot.providers.wire import Loose, WireModel, parse, parse_error_body

PATH = "/api/ai/nano-banana/generate"
_SAFETY_WORDS = ("safety", "content policy", "inappropriate", "nsfw", "prohibited")


class _Image(WireModel):
    """One images[] entry: where to download the result."""

    url: str


class _Answer(WireModel):
    """The answer to a generate call; the host names the model it picked from the size."""

    images: list[_Image] | None = None
    model: Loose[str] = None


class _ErrorBody(WireModel):
    """Errors here are {"error": "text"}."""

    error: Loose[StrictStr] = None


def map_error(provider: str) -> ErrorMapper:
    """Errors here are {"error": "text"}; the status says what kind."""

    def mapper(status: int, body: Any, headers: Mapping[str, str]) -> ProviderError:
        message = parse_error_body(_ErrorBody, body).error or ""
        why = reason(status, message)
        if status == 401:
            return AuthFailed(
                f"{provider}: the API key was refused; the operator must fix it", provider=provider
            )
        if status == 402:
            return OutOfCredits(f"{provider}: the account is out of credits ({why})", provider=provider)
        if status == 403:
            return AuthFailed(f"{provider}: access denied ({why})", provider=provider)
        if status == 429:
            delay = parse_retry_after(headers.get("Retry-After"))
            return RateLimited(f"{provider} is busy; try again shortly", retry_after=delay, provider=provider)
        if status >= 500:
            return ProviderUnavailable(f"{provider} failed to make the image ({why})", provider=provider)
        if any(word in message.lower() for word in _SAFETY_WORDS):
            return SafetyBlocked(
                Text("provider.safety.request", provider=provider, why=why),
                reason=None,  # no code of the service's: nothing to name
                model_text=clean_message(message),
                provider=provider,
            )
        return BadRequest(f"{provider} rejected the request ({why})", provider=provider)

    return mapper


class NBProProvider(ProviderBase):
    """POST /api/ai/nano-banana/generate with Bearer auth; JSON or multipart."""

    kind: ClassVar[str] = "nbpro"

    def error_mapper(self) -> ErrorMapper:
        """Plain-string error bodies."""
        return map_error(self.name)

    def _fields(self, request: GenerateRequest) -> dict[str, str]:
        """prompt, size (1k|2k|4k) and aspectRatio."""
        fields = {"prompt": request.prompt, "size": (request.resolution or "1K").lower()}
        if request.aspect_ratio:
            fields["aspectRatio"] = request.aspect_ratio
        return fields

    async def generate(self, request: GenerateRequest) -> GenerateResult:
        """Uploads image bytes as multipart; passes URL-only inputs as JSON `image`."""
        spec = self.validate(request)
        fields = self._fields(request)
        files = [img for i in request.images if (img := i.as_image()) is not None]
        urls = [i.url for i in request.images if i.data is None and i.url]
        body: JsonDict | None = None
        form = None
        if files:
            form = multipart(fields, files)
        else:
            body = {**fields, **({"image": urls if len(urls) > 1 else urls[0]} if urls else {})}
        return await fan_out(lambda: self._call(body, form, spec.name), request.count)

    async def _call(self, body: JsonDict | None, form: Any, model: str) -> GenerateResult:
        """One generate call and the download of its images."""
        data = await self.send("POST", self.base_url + PATH, json_body=body, form=form)
        answer = parse(_Answer, data, self.name)
        if not answer.images:
            raise NoImageReturned(Text("provider.no_image.any", provider=self.name), provider=self.name)
        images = await asyncio.gather(*(self.download(image.url) for image in answer.images))
        return GenerateResult(images=list(images), provider=self.name, model=answer.model or model)

    async def check(self) -> str:
        """Send an empty request: 400 proves the key is accepted without making an image."""
        try:
            await self.send("POST", self.base_url + PATH, json_body={}, retry=False)
        except BadRequest:
            return "ok: key accepted"
        return "ok"
