"""Fake OpenAI-style image APIs: a Nano-Banana relay and the aikit worker."""

from __future__ import annotations

import math
import secrets
import string
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal

from aiohttp import web

from tests.fakes.imagegen import (
    EXT_BY_FORMAT,
    MIME_BY_FORMAT,
    STANDARD_RATIOS,
    dims_for,
    image_dims,
    nearest_ratio,
    normalize_format,
    parse_ratio,
    sniff_mime,
)
from tests.fakes.providers.base import (
    COMMON_FAULTS,
    FakeProvider,
    Fault,
    RecordedRequest,
    b64,
    decode_base64,
)

Flavor = Literal["relay", "aikit"]
Kind = Literal["generate", "edit", "upscale"]

RELAY_MODELS = ("nano-banana", "nano-banana-2", "nano-banana-hd")
AIKIT_RATIOS = ("1:1", "16:9", "9:16", "3:4", "4:3")
LEGACY_SIZES = {
    "1024x1024": "1:1",
    "1792x1024": "16:9",
    "1024x1792": "9:16",
    "768x1024": "3:4",
    "1024x768": "4:3",
}
AIKIT_MIME = frozenset({"image/jpeg", "image/jpg", "image/png", "image/gif", "image/webp", "image/bmp"})
IMAGE_FIELDS = ("image", "image[]")
MAX_UPSCALE_SIDE = 8192
CONTENT_TYPE_MESSAGE = (
    "Content-Type must be application/json, multipart/form-data, or application/x-www-form-urlencoded"
)
OPENAI_FAULTS = COMMON_FAULTS | {
    "insufficient_quota",
    "moderation_blocked",
    "content_policy",
    "not_found",
    "bad_request",
    "empty_data",
    "url_404",
    "url_not_image",
}


class ApiError(Exception):
    """An OpenAI-style `{"error": {message, type, param, code}}` answer."""

    def __init__(
        self,
        status: int,
        message: str,
        type_: str = "invalid_request_error",
        code: str | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        """Remember the error fields."""
        super().__init__(message)
        self.status, self.message, self.type, self.code = status, message, type_, code
        self.headers, self.extra = headers, extra or {}

    def response(self) -> web.Response:
        """Render as a JSON response."""
        error = {"message": self.message, "type": self.type, "param": None, "code": self.code}
        body = {"error": {**error, **self.extra}}
        return web.json_response(body, status=self.status, headers=self.headers)


@dataclass
class InputImage:
    """A reference image: decoded bytes when available, else only the URL."""

    data: bytes | None
    url: str | None = None


@dataclass
class Job:
    """A validated generation/edit/upscale request."""

    kind: Kind
    prompt: str
    n: int
    response_format: str
    ratio: str
    size: str
    fmt: str
    images: list[InputImage] = field(default_factory=list)
    factor: int = 2


def _masked(key: str | None) -> str:
    """Mask a key the way OpenAI does in its 401 message."""
    if not key:
        return "<empty>"
    return key[:3] + "*" * max(0, len(key) - 7) + key[-4:] if len(key) > 7 else "*" * len(key)


def bad_key_error(key: str | None = None, message: str | None = None) -> ApiError:
    """The 401 invalid_api_key answer."""
    text = message or (
        f"Incorrect API key provided: {_masked(key)}. You can find your API key at "
        "https://platform.openai.com/account/api-keys."
    )
    return ApiError(401, text, "invalid_request_error", "invalid_api_key")


def _rate_limited(fault: Fault) -> ApiError:
    """429 rate_limit_exceeded with a Retry-After header."""
    seconds = 1 if fault.retry_after is None else max(1, math.ceil(fault.retry_after))
    message = fault.message or (
        "Rate limit reached for images per minute (IPM): Limit 5, Used 5, Requested 1. "
        f"Please try again in {seconds}s."
    )
    headers = {"Retry-After": str(seconds)}
    return ApiError(fault.status or 429, message, "requests", "rate_limit_exceeded", headers)


def error_for_fault(fault: Fault) -> ApiError | None:
    """The error answer of an HTTP-error fault, or None for other faults."""
    if fault.name == "rate_limited":
        return _rate_limited(fault)
    if fault.name == "bad_key":
        return bad_key_error("sk-invalid-key", fault.message)
    table: dict[str, tuple[int, str, str, str | None]] = {
        "insufficient_quota": (
            429,
            "You exceeded your current quota, please check your plan and billing details.",
            "insufficient_quota",
            "insufficient_quota",
        ),
        "moderation_blocked": (
            400,
            "Your request was rejected by the safety system. If you believe this is an error, "
            "contact us at help.openai.com and include the request ID.",
            "image_generation_user_error",
            "moderation_blocked",
        ),
        "content_policy": (
            400,
            "Your request was rejected as a result of our safety system. Your prompt may contain "
            "text that is not allowed by our safety system.",
            "invalid_request_error",
            "content_policy_violation",
        ),
        "server_error": (500, "Internal server error", "api_error", None),
        "bad_gateway": (502, "Upstream API error: 502 - Bad Gateway", "api_error", None),
        "unavailable": (
            503,
            "Upstream API error: 503 - The model is overloaded. Please try again later.",
            "api_error",
            None,
        ),
        "gateway_timeout": (504, "Server polling timeout", "api_error", None),
        "not_found": (404, "Page not found", "not_found", None),
        "bad_request": (400, "Invalid aspect ratio", "invalid_request_error", "invalid_parameter"),
    }
    if fault.name not in table:
        return None
    status, message, type_, code = table[fault.name]
    extra = {}
    if fault.name == "moderation_blocked":
        extra = {"moderation_details": {"moderation_stage": "output", "categories": ["other"]}}
    return ApiError(fault.status or status, fault.message or message, type_, code, extra=extra)


def _first(value: Any) -> Any:
    """The first element of a list, or the value itself."""
    return value[0] if isinstance(value, list) and value else value


def _params(rec: RecordedRequest) -> dict[str, Any]:
    """Request parameters from a JSON body, form fields or the query string."""
    if isinstance(rec.json, dict):
        return dict(rec.json)
    if rec.form:
        return {key: values if len(values) > 1 else values[0] for key, values in rec.form.items()}
    return dict(rec.query)


def _image_strings(params: dict[str, Any], flavor: Flavor) -> list[str]:
    """Image references given as strings (URL, data URL or raw base64)."""
    names = ["image", "image[]"] + (["imageUrl", "url"] if flavor == "aikit" else [])
    found: list[str] = []
    for name in names:
        value = params.get(name)
        values = value if isinstance(value, list) else [value]
        found += [item for item in values if isinstance(item, str) and item]
    return found


class FakeOpenAIImages(FakeProvider):
    """Fake OpenAI-style image endpoint; flavor "relay" or "aikit"."""

    FAULTS: ClassVar[frozenset[str]] = OPENAI_FAULTS

    def __init__(
        self,
        api_key: str | None = None,
        flavor: Flavor = "relay",
        upscale: bool | None = None,
        *,
        api_keys: Sequence[str] = (),
    ) -> None:
        """Pick the flavor; upscale defaults to True for aikit and False for relay."""
        if flavor not in ("relay", "aikit"):
            raise ValueError(f"unknown flavor {flavor!r}")
        super().__init__(api_key=api_key, api_keys=api_keys)
        self.flavor: Flavor = flavor
        self.upscale = (flavor == "aikit") if upscale is None else upscale

    # -- routes ---------------------------------------------------------------------------

    def _add_routes(self, app: web.Application) -> None:
        """Register the image, model-list and file routes."""
        endpoints: dict[str, Kind] = {"generations": "generate", "edits": "edit"}
        if self.upscale:
            endpoints["upscale"] = "upscale"
        for name, kind in endpoints.items():
            handler = self._endpoint(kind)
            app.router.add_post(f"/v1/images/{name}", handler)
            if self.flavor == "aikit":
                app.router.add_get(f"/v1/images/{name}", handler)
        app.router.add_get("/v1/models", self._models)
        app.router.add_get("/images/{filename}", self._serve_file)

    def _route_not_found(self, request: web.Request) -> web.Response:
        """Flavor-specific 404 body."""
        if self.flavor == "aikit":
            return ApiError(404, "Page not found", "not_found").response()
        message = f"Invalid URL ({request.method} {request.path})"
        return ApiError(404, message, "invalid_request_error").response()

    def _file_missing(self, request: web.Request) -> web.Response:
        """The worker's answer for an expired or unknown image."""
        return ApiError(404, "Image not found or expired").response()

    def _sample_body(self) -> Any:
        """A success-shaped payload for the "malformed" fault."""
        return {"created": int(time.time()), "data": [{"url": f"{self.base_url}/images/x.png"}]}

    def _endpoint(self, kind: Kind) -> Callable[[web.Request], Awaitable[web.Response]]:
        """Bind a handler for one image endpoint."""

        async def handler(request: web.Request) -> web.Response:
            """Handle one generation-type call."""
            self.calls += 1
            try:
                return await self._handle(request, kind)
            except ApiError as error:
                return error.response()

        return handler

    async def _models(self, request: web.Request) -> web.Response:
        """GET /v1/models."""
        try:
            self._check_auth(request)
        except ApiError as error:
            return error.response()
        if self.flavor == "aikit":
            ids, owner = ["nano-banana", "imagen-4.0-upscale-preview"], "google"
        else:
            ids, owner = list(RELAY_MODELS), "vertex-ai"
        data = [{"id": i, "object": "model", "created": 1764671202, "owned_by": owner} for i in ids]
        return web.json_response({"object": "list", "data": data})

    # -- request handling -----------------------------------------------------------------

    def _check_auth(self, request: web.Request) -> None:
        """Relay Bearer auth (aikit never checks)."""
        if self.flavor == "aikit" or self.api_key is None:
            return
        header = request.headers.get("Authorization", "")
        token = header[7:].strip() if header.lower().startswith("bearer ") else None
        if not self.accepts(token):
            raise bad_key_error(token)

    def _check_content_type(self, request: web.Request, rec: RecordedRequest) -> None:
        """Reject bodies that are neither JSON, multipart nor urlencoded."""
        if request.method == "GET" or not request.body_exists:
            return
        ctype = request.content_type
        if ctype == "application/json":
            if rec.json is None:
                raise ApiError(400, "We could not parse the JSON body of your request.")
            return
        if not ctype.startswith("multipart/") and ctype != "application/x-www-form-urlencoded":
            raise ApiError(400, CONTENT_TYPE_MESSAGE)

    async def _handle(self, request: web.Request, kind: Kind) -> web.Response:
        """Auth, validation, scripted faults and the success answer."""
        self._check_auth(request)
        rec = self._recorded(request)
        self._check_content_type(request, rec)
        job = self._job(kind, _params(rec), rec)
        fault = self._next_fault(request)
        await self._pause(fault)
        if (answer := self._transport_fault(request, fault)) is not None:
            return answer
        if (error := error_for_fault(fault)) is not None:
            raise error
        created = int(time.time())
        if fault.name == "empty_data":
            return web.json_response({"created": created, "data": []})
        items = [await self._result_item(job, fault) for _ in range(job.n)]
        return web.json_response({"created": created, "data": items})

    # -- validation -----------------------------------------------------------------------

    def _job(self, kind: Kind, params: dict[str, Any], rec: RecordedRequest) -> Job:
        """Validate parameters and build the job description."""
        prompt = self._prompt(kind, params)
        model = self._model(params)
        images = self._input_images(params, rec)
        if kind != "generate" and not images:
            raise ApiError(400, "Missing required parameter: image")
        if self.flavor == "aikit" and kind == "edit":
            images = images[:1]
        response_format = str(_first(params.get("response_format")) or "url")
        if response_format not in ("url", "b64_json"):
            raise ApiError(400, 'response_format must be "url" or "b64_json"')
        if kind == "upscale":
            return self._upscale_job(params, images, response_format)
        ratio = self._ratio(params, images)
        return Job(
            kind=kind,
            prompt=prompt.strip(),
            n=self._count(params),
            response_format=response_format,
            ratio=ratio,
            size=self._size(model, params),
            fmt=self._format(kind, params),
            images=images,
        )

    def _invalid(self, message: str, code: str = "invalid_parameter") -> ApiError:
        """A 400 parameter error (aikit never fills `code`)."""
        return ApiError(400, message, code=None if self.flavor == "aikit" else code)

    def _prompt(self, kind: Kind, params: dict[str, Any]) -> str:
        """The required, non-empty prompt (upscale has none)."""
        prompt = _first(params.get("prompt"))
        if kind == "upscale":
            return "Upscaled image"
        if not isinstance(prompt, str) or not prompt.strip():
            message = "Missing or invalid required parameter: prompt"
            if kind == "edit":
                message = "Missing required parameter: prompt"
            raise ApiError(400, message)
        return prompt

    def _model(self, params: dict[str, Any]) -> str:
        """The model id, validated per flavor."""
        model = _first(params.get("model"))
        if self.flavor == "aikit":
            if model not in (None, "", "nano-banana"):
                raise ApiError(400, f"Invalid model: {model}. Supported models: nano-banana")
            return "nano-banana"
        if not model:
            raise ApiError(400, "Missing required parameter: model")
        if model not in RELAY_MODELS:
            message = f"The model `{model}` does not exist or you do not have access to it."
            raise ApiError(404, message, code="model_not_found")
        return str(model)

    def _count(self, params: dict[str, Any]) -> int:
        """Parameter n (1-4)."""
        raw = _first(params.get("n", 1))
        try:
            n = int(raw)
        except (TypeError, ValueError):
            n = 0
        if not 1 <= n <= 4:
            raise self._invalid("Parameter n must be between 1 and 4")
        return n

    def _ratio(self, params: dict[str, Any], images: list[InputImage]) -> str:
        """aspect_ratio, else legacy size, else the first input image's ratio, else 1:1."""
        allowed = AIKIT_RATIOS if self.flavor == "aikit" else STANDARD_RATIOS
        ratio = _first(params.get("aspect_ratio"))
        if ratio:
            if ratio not in allowed:
                raise self._invalid("Invalid aspect ratio")
            return str(ratio)
        size = _first(params.get("size"))
        if size and size != "auto":
            return self._legacy_ratio(str(size), allowed)
        dims = image_dims(images[0].data) if images and images[0].data else None
        return nearest_ratio(*dims, allowed) if dims else "1:1"

    def _legacy_ratio(self, size: str, allowed: tuple[str, ...]) -> str:
        """Map an OpenAI `size` (WxH) to the nearest allowed ratio."""
        if size in LEGACY_SIZES:
            return LEGACY_SIZES[size]
        try:
            width, height = parse_ratio(size.replace("x", ":"))
        except ValueError:
            raise self._invalid(f"Invalid size: {size}") from None
        return nearest_ratio(width, height, allowed)

    def _size(self, model: str, params: dict[str, Any]) -> str:
        """Output tier: image_size for nano-banana-2, 4K for -hd, else 1K."""
        if model == "nano-banana-hd":
            return "4K"
        raw = _first(params.get("image_size"))
        if model != "nano-banana-2" or not raw:
            return "1K"
        size = str(raw).upper()
        if size not in ("1K", "2K", "4K"):
            raise self._invalid("Invalid image_size: must be one of 1K, 2K, 4K")
        return size

    def _format(self, kind: Kind, params: dict[str, Any]) -> str:
        """Output encoding: aikit honours output_format on generations, else PNG."""
        raw = _first(params.get("output_format"))
        if self.flavor != "aikit" or kind != "generate" or not raw:
            return "PNG"
        if raw not in ("jpeg", "png", "webp"):
            raise self._invalid("Invalid output_format: must be one of jpeg, png, webp")
        return normalize_format(str(raw))

    def _upscale_job(self, params: dict[str, Any], images: list[InputImage], response_format: str) -> Job:
        """Validate upscale_factor and build an upscale job."""
        factor = str(_first(params.get("upscale_factor")) or "x2")
        if factor not in ("x2", "x4"):
            raise self._invalid("Invalid upscale_factor: must be one of x2, x4")
        return Job(
            kind="upscale",
            prompt="Upscaled image",
            n=1,
            response_format=response_format,
            ratio="1:1",
            size="1K",
            fmt="JPEG",
            images=images[:1],
            factor=int(factor[1]),
        )

    # -- input images ---------------------------------------------------------------------

    def _bad_image(self, message: str) -> ApiError:
        """aikit answers bad image input with 500 api_error, the relay with 400."""
        if self.flavor == "aikit":
            return ApiError(500, message, "api_error")
        return ApiError(400, message, "invalid_request_error", "invalid_image")

    def _input_images(self, params: dict[str, Any], rec: RecordedRequest) -> list[InputImage]:
        """Uploaded files (image, image[]) and string references, validated."""
        images = [
            self._uploaded(data, ctype) for name, _filename, ctype, data in rec.files if name in IMAGE_FIELDS
        ]
        images += [self._referenced(text) for text in _image_strings(params, self.flavor)]
        return images

    def _uploaded(self, data: bytes, content_type: str) -> InputImage:
        """Validate an uploaded file part."""
        generic = content_type in ("application/octet-stream", "")
        if self.flavor == "aikit" and not generic and content_type not in AIKIT_MIME:
            raise self._bad_image(f"Invalid image type: {content_type}")
        if sniff_mime(data) is None:
            raise self._bad_image(f"Invalid image type: {content_type or 'unknown'}")
        return InputImage(data)

    def _referenced(self, text: str) -> InputImage:
        """Resolve a URL / data URL / raw base64 reference."""
        if text.startswith(("http://", "https://")):
            return InputImage(self.local_file(text), url=text)
        payload = text
        if text.startswith("data:"):
            _header, _, payload = text.partition(",")
        data = decode_base64(payload)
        if not data:
            raise self._bad_image("Invalid base64 data")
        mime = sniff_mime(data)
        if mime is None:
            raise self._bad_image("Invalid image type: unknown")
        return InputImage(data)

    # -- output ---------------------------------------------------------------------------

    def _output_dims(self, job: Job) -> tuple[int, int]:
        """Pixel size of the output image."""
        if job.kind != "upscale":
            return dims_for(job.ratio, job.size)
        source = job.images[0].data if job.images else None
        width, height = (image_dims(source) if source else None) or (1024, 1024)
        return (
            min(MAX_UPSCALE_SIDE, width * job.factor),
            min(MAX_UPSCALE_SIDE, height * job.factor),
        )

    def _filename(self, kind: Kind, fmt: str) -> str:
        """Worker-style name: HHMMSS-DDMMYYYY_<4 base36>_<kind>.<ext>, unique per fake."""
        stamp = datetime.now(UTC).strftime("%H%M%S-%d%m%Y")
        alphabet = string.ascii_lowercase + string.digits
        while True:
            tag = "".join(secrets.choice(alphabet) for _ in range(4))
            name = f"{stamp}_{tag}_{kind}.{EXT_BY_FORMAT[fmt]}"
            if f"/images/{name}" not in self._files:
                return name

    async def _result_item(self, job: Job, fault: Fault) -> dict[str, Any]:
        """One `data[]` entry: url or b64_json plus revised_prompt."""
        width, height = self._output_dims(job)
        data = await self._render(width, height, job.fmt, job.prompt)
        if job.response_format == "b64_json":
            encoded = b64(data)
            if job.kind == "upscale":
                encoded = f"data:image/jpeg;base64,{encoded}"
            return {"b64_json": encoded, "revised_prompt": job.prompt}
        path = f"/images/{self._filename(job.kind, job.fmt)}"
        url = self._host(path, data, MIME_BY_FORMAT[job.fmt], fault)
        return {"url": url, "revised_prompt": job.prompt}
