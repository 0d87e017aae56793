"""What every interface shares: its config entry, model limits, and checks made before sending."""

from __future__ import annotations

import asyncio
import base64
import binascii
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, ClassVar

import aiohttp
import yarl

from bot.config import ProviderConfig
from bot.errors import BadRequest, InputError, ProviderUnavailable, SafetyBlocked
from bot.i18n import Text
from bot.providers.base import (
    GenerateRequest,
    GenerateResult,
    ImageData,
    JsonDict,
    ModelSpec,
    UpscaleRequest,
)
from bot.providers.http import ErrorMapper, FormFactory, HttpClient, Limits, image_from_bytes
from bot.providers.keys import KeyRing
from bot.providers.models import spec_for
from bot.providers.pacing import Pacer
from bot.providers.telemetry import NO_TELEMETRY


class ProviderBase:
    """Binds one wire format to one configured provider entry."""

    kind: ClassVar[str] = "?"

    def __init__(self, config: ProviderConfig, http: HttpClient | None, limits: Limits) -> None:
        self.config = config
        self.name = config.name
        self._http = http
        self.limits = limits
        # Key rests are reported where the HTTP client reports its attempts (the bot's metrics).
        telemetry = http.policy.telemetry if http is not None else NO_TELEMETRY
        pacer = Pacer(config.requests_per_minute, config.key_requests_per_minute, len(config.api_keys))
        self.keys = KeyRing(config.name, config.api_keys, telemetry=telemetry, pacer=pacer)

    @property
    def http(self) -> HttpClient:
        """The shared HTTP client (absent only for the offline local provider)."""
        if self._http is None:
            raise RuntimeError(f"provider {self.name} has no HTTP client")
        return self._http

    @property
    def base_url(self) -> str:
        """The configured base URL without a trailing slash."""
        return (self.config.base_url or "").rstrip("/")

    @property
    def models(self) -> tuple[str, ...]:
        """Configured model ids, the default first."""
        return tuple(self.config.models)

    @property
    def can_upscale(self) -> bool:
        """Whether this provider offers upscaling."""
        return False

    def auth_headers(self, key: str | None) -> dict[str, str]:
        """Bearer auth when there is a key (Gemini sends its own header)."""
        return {"Authorization": f"Bearer {key}"} if key else {}

    def error_mapper(self) -> ErrorMapper:
        """Maps this wire format's non-2xx answers to typed errors (each wire format has one)."""
        raise NotImplementedError

    async def send(
        self,
        method: str,
        url: str,
        *,
        json_body: Any = None,
        form: FormFactory | None = None,
        body: bytes | None = None,
        retry: bool = True,
    ) -> Any:
        """One API request with the current key, moving to the next key when a key is limited or refused."""
        return await self.keys.run(
            lambda key: self.send_with(
                key, method, url, json_body=json_body, form=form, body=body, retry=retry
            )
        )

    async def send_with(
        self,
        key: str | None,
        method: str,
        url: str,
        *,
        json_body: Any = None,
        form: FormFactory | None = None,
        body: bytes | None = None,
        retry: bool = True,
    ) -> Any:
        """One API request with the given key (the shared client retries transient failures).

        body is JSON already encoded (built off the event loop); json_body is encoded on it.
        """
        return await self.http.request_json(
            method,
            url,
            provider=self.name,
            mapper=self.error_mapper(),
            limits=self.limits,
            headers=self.auth_headers(key),
            json_body=json_body,
            form=form,
            body=body,
            retry=retry,
        )

    def resolve_model(self, model: str | None) -> str:
        """The model to call: the one asked for, or this provider's default."""
        return model or self.models[0]

    def spec(self, model: str | None) -> ModelSpec:
        """The limits of a model, with this entry's overrides."""
        c = self.config
        return spec_for(
            self.kind,
            self.resolve_model(model),
            max_input_images=c.max_input_images,
            aspect_ratios=tuple(c.aspect_ratios) if c.aspect_ratios else None,
            resolutions=tuple(c.resolutions) if c.resolutions else None,
        )

    def validate(self, request: GenerateRequest) -> ModelSpec:
        """Refuse, before sending, anything the model is known not to accept."""
        spec = self.spec(request.model)
        model = spec.name
        if not request.prompt.strip():
            raise BadRequest(Text("provider.prompt.empty"), provider=self.name)
        if len(request.prompt) > spec.max_prompt_chars:
            too_long = Text(
                "provider.prompt.too_long",
                length=len(request.prompt),
                model=model,
                limit=spec.max_prompt_chars,
            )
            raise BadRequest(too_long, provider=self.name)
        if request.aspect_ratio and request.aspect_ratio not in spec.aspect_ratios:
            ratios = ", ".join(spec.aspect_ratios)
            raise BadRequest(
                Text("provider.ratio.unsupported", model=model, ratio=request.aspect_ratio, ratios=ratios),
                provider=self.name,
            )
        if request.resolution and request.resolution not in spec.resolutions:
            resolutions = ", ".join(spec.resolutions)
            raise BadRequest(
                Text(
                    "provider.resolution.unsupported",
                    model=model,
                    resolution=request.resolution,
                    resolutions=resolutions,
                ),
                provider=self.name,
            )
        if not 1 <= request.count <= spec.max_count:
            raise BadRequest(
                Text("provider.count.range", model=model, most=spec.max_count, asked=request.count),
                provider=self.name,
            )
        self._validate_images(request, spec)
        return spec

    def _validate_images(self, request: GenerateRequest, spec: ModelSpec) -> None:
        """Count, kind and size of the reference images."""
        if len(request.images) > spec.max_input_images:
            raise BadRequest(
                Text(
                    "provider.images.too_many",
                    model=spec.name,
                    count=spec.max_input_images,
                    given=len(request.images),
                ),
                provider=self.name,
            )
        for image in request.images:
            if spec.needs_urls:
                if not image.url or not image.url.startswith(("http://", "https://")):
                    raise BadRequest(
                        Text("provider.images.needs_url", provider=self.name, name=image.name),
                        provider=self.name,
                    )
                continue
            if image.data is None:
                raise BadRequest(Text("provider.images.no_data", name=image.name), provider=self.name)
            if image.mime not in spec.input_mimes:
                raise BadRequest(
                    Text("provider.images.format", name=image.name, mime=image.mime, model=spec.name),
                    provider=self.name,
                )
            if len(image.data) > spec.max_input_bytes:
                too_big = Text(
                    "provider.images.too_big",
                    name=image.name,
                    size=round(len(image.data) / 1048576, 1),
                    model=spec.name,
                    limit=round(spec.max_input_bytes / 1048576, 1),
                )
                raise BadRequest(too_big, provider=self.name)

    async def generate(self, request: GenerateRequest) -> GenerateResult:
        """Make or edit images (each wire format implements this)."""
        raise NotImplementedError

    async def check(self) -> str:
        """Probe the provider (each wire format implements this)."""
        raise NotImplementedError

    async def upscale(self, request: UpscaleRequest) -> GenerateResult:
        """Providers without an upscale endpoint refuse clearly."""
        raise BadRequest(Text("provider.upscale.unsupported", provider=self.name), provider=self.name)

    async def download(self, url: str) -> ImageData:
        """A result image from this provider: its own host is trusted, any other must be public."""
        try:
            return await self.http.download(
                url,
                provider=self.name,
                limits=self.limits,
                trusted_hosts={yarl.URL(self.base_url).host or ""},
            )
        except InputError as e:
            raise ProviderUnavailable(
                f"{self.name} returned an unsafe image address ({e.message})", provider=self.name
            ) from None

    def decode_b64_image(self, value: str) -> ImageData:
        """Decode base64 (with or without a data: prefix) into a checked image."""
        if value.startswith("data:"):
            value = value.partition(",")[2]
        try:
            raw = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise ProviderUnavailable(
                f"{self.name} returned damaged image data (bad base64); try again",
                provider=self.name,
            ) from None
        return image_from_bytes(raw, self.name)


def data_url(image: ImageData) -> str:
    """An image as a data: URL."""
    return f"data:{image.mime};base64,{base64.b64encode(image.data).decode()}"


async def fan_out(call: Callable[[], Awaitable[GenerateResult]], count: int) -> GenerateResult:
    """Run one single-image call per requested image; fail only when none produced an image."""
    if count == 1:
        return await call()
    outcomes = await asyncio.gather(*(call() for _ in range(count)), return_exceptions=True)
    results = [o for o in outcomes if isinstance(o, GenerateResult)]
    if not results:
        errors = [o for o in outcomes if isinstance(o, BaseException)]
        raise next((e for e in errors if isinstance(e, SafetyBlocked)), errors[0])
    first = results[0]
    texts = [r.text for r in results if r.text]
    return GenerateResult(
        images=[img for r in results for img in r.images],
        provider=first.provider,
        model=first.model,
        text="\n".join(texts) or None,
        state={**first.state, "variants": [r.state for r in results]},
        usage=summed_usage([r.usage for r in results]),
    )


def summed_usage(usages: list[JsonDict]) -> JsonDict:
    """The usage of several calls as one: each is billed, so token counts (and per-modality details)
    add up; anything else (a service tier) is the first call's."""
    total: JsonDict = {}
    for usage in usages:
        for key, value in usage.items():
            before = total.get(key)
            if _is_count(value) and (before is None or _is_count(before)):
                total[key] = (before or 0) + value
            elif isinstance(value, list) and (before is None or isinstance(before, list)):
                total[key] = _summed_details(before or [], value)
            else:
                total.setdefault(key, value)
    return total


def _is_count(value: Any) -> bool:
    """Whether a usage value is a token count."""
    return isinstance(value, int) and not isinstance(value, bool)


def _summed_details(total: list[Any], more: list[Any]) -> list[JsonDict]:
    """`[{modality, tokenCount}]` lists added up by modality (malformed items are left out)."""
    counts: dict[str, int] = {}
    for item in (*total, *more):
        if (
            isinstance(item, dict)
            and isinstance(item.get("modality"), str)
            and _is_count(item.get("tokenCount"))
        ):
            counts[item["modality"]] = counts.get(item["modality"], 0) + item["tokenCount"]
    return [{"modality": modality, "tokenCount": tokens} for modality, tokens in counts.items()]


_EXT = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp"}


def multipart(fields: Mapping[str, str], images: list[ImageData]) -> Callable[[], aiohttp.FormData]:
    """A factory of fresh multipart bodies with repeated `image` file parts (a FormData sends once)."""

    def build() -> aiohttp.FormData:
        form = aiohttp.FormData()
        for key, value in fields.items():
            form.add_field(key, value)
        for n, image in enumerate(images):
            form.add_field(
                "image",
                image.data,
                filename=f"image{n}.{_EXT.get(image.mime, 'png')}",
                content_type=image.mime,
            )
        return form

    return build
