"""Fake nano-banana-pro.net "NB Pro API" server."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, ClassVar

from aiohttp import web

from tests.fakes.imagegen import dims_for, image_dims, nearest_ratio, sniff_mime
from tests.fakes.providers.base import (
    COMMON_FAULTS,
    FakeProvider,
    Fault,
    RecordedRequest,
    bearer_token,
    random_id,
)

NBPRO_RATIOS = ("1:1", "2:3", "3:2", "3:4", "4:3", "9:16", "16:9", "21:9")
NBPRO_SIZES = ("1k", "2k", "4k")
MAX_REFERENCES = 14
MAX_UPLOAD_BYTES = int(2.5 * 1024 * 1024)
NBPRO_FAULTS = COMMON_FAULTS | {"out_of_credits", "url_404", "url_not_image"}


class NBProError(Exception):
    """An `{"error": "<text>"}` answer."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        """Remember status, text and extra headers."""
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers

    def response(self) -> web.Response:
        """Render as JSON."""
        return web.json_response({"error": self.message}, status=self.status, headers=self.headers)


@dataclass
class NBProJob:
    """A validated generate request."""

    prompt: str
    size: str
    ratio: str
    references: list[str]
    uploads: list[bytes]


def error_for_fault(fault: Fault) -> NBProError | None:
    """The error answer for an HTTP-error fault, or None."""
    headers = None
    if fault.name == "rate_limited" and fault.retry_after is not None:
        headers = {"Retry-After": str(max(1, math.ceil(fault.retry_after)))}
    table = {
        "rate_limited": (429, "Too many concurrent generations. Please try again later."),
        "out_of_credits": (402, "Insufficient credits"),
        "server_error": (500, "Generation failed"),
        "bad_gateway": (502, "Bad gateway"),
        "unavailable": (503, "Service temporarily unavailable"),
        "gateway_timeout": (504, "Generation timed out"),
        "bad_key": (401, "Invalid API key"),
    }
    if fault.name not in table:
        return None
    status, message = table[fault.name]
    return NBProError(fault.status or status, fault.message or message, headers)


def _text(rec: RecordedRequest, name: str) -> Any:
    """A field from the JSON body or the first form value."""
    if isinstance(rec.json, dict):
        return rec.json.get(name)
    values = rec.form.get(name)
    return values[0] if values else None


def _references(rec: RecordedRequest) -> list[str]:
    """Reference image URLs from JSON `image` (string or list) or multipart text fields."""
    raw = rec.json.get("image") if isinstance(rec.json, dict) else rec.form.get("image")
    if raw is None:
        return []
    values = raw if isinstance(raw, list) else [raw]
    for value in values:
        if not isinstance(value, str) or not value.startswith(("http://", "https://")):
            raise NBProError(400, "Invalid image URL")
    return values


def parse_job(rec: RecordedRequest) -> NBProJob:
    """Validate a generate request (JSON or multipart)."""
    if rec.json is None and not rec.form and not rec.files:
        raise NBProError(400, "Invalid request body")
    prompt = _text(rec, "prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise NBProError(400, "Prompt is required")
    size = str(_text(rec, "size") or "1k").lower()
    if size not in NBPRO_SIZES:
        raise NBProError(400, "Invalid size. Must be one of: 1k, 2k, 4k")
    ratio = _text(rec, "aspectRatio")
    if ratio is not None and ratio not in NBPRO_RATIOS:
        raise NBProError(400, f"Invalid aspectRatio. Must be one of: {', '.join(NBPRO_RATIOS)}")
    uploads = [data for name, _fn, _ct, data in rec.files if name == "image"]
    references = _references(rec)
    if len(uploads) + len(references) > MAX_REFERENCES:
        raise NBProError(400, f"Too many reference images (max {MAX_REFERENCES})")
    for data in uploads:
        if len(data) > MAX_UPLOAD_BYTES:
            raise NBProError(400, "Image size exceeds 2.5MB limit")
        if sniff_mime(data) is None:
            raise NBProError(400, "Invalid image file")
    return NBProJob(prompt.strip(), size, ratio or _default_ratio(uploads), references, uploads)


def _default_ratio(uploads: list[bytes]) -> str:
    """The first upload's nearest supported ratio, else 1:1."""
    dims = image_dims(uploads[0]) if uploads else None
    return nearest_ratio(*dims, NBPRO_RATIOS) if dims else "1:1"


class FakeNBPro(FakeProvider):
    """Fake `POST /api/ai/nano-banana/generate` with results hosted under /files/."""

    FAULTS: ClassVar[frozenset[str]] = NBPRO_FAULTS

    def _add_routes(self, app: web.Application) -> None:
        """Register the generate endpoint and file hosting."""
        app.router.add_post("/api/ai/nano-banana/generate", self._handle)
        app.router.add_get("/files/{name}", self._serve_file)

    def _route_not_found(self, request: web.Request) -> web.Response:
        """Plain-string 404."""
        return NBProError(404, "Not found").response()

    def _sample_body(self) -> Any:
        """A success-shaped payload for the "malformed" fault."""
        images = [{"url": f"{self.base_url}/files/x.png"}]
        return {"model": "nano-banana-2-1k", "created": int(time.time()), "images": images}

    def _check_auth(self, request: web.Request) -> None:
        """401 for a missing or wrong Bearer key."""
        if self.api_key is None:
            return
        token = bearer_token(request)
        if token is None:
            raise NBProError(401, "Missing API key")
        if not self.accepts(token):
            raise NBProError(401, "Invalid API key")

    async def _handle(self, request: web.Request) -> web.Response:
        """POST /api/ai/nano-banana/generate."""
        self.calls += 1
        try:
            return await self._generate(request)
        except NBProError as error:
            return error.response()

    async def _generate(self, request: web.Request) -> web.Response:
        """Auth, validation, scripted faults, then the success answer."""
        self._check_auth(request)
        job = parse_job(self._recorded(request))
        fault = self._next_fault(request)
        await self._pause(fault)
        if (answer := self._transport_fault(request, fault)) is not None:
            return answer
        if (error := error_for_fault(fault)) is not None:
            raise error
        width, height = dims_for(job.ratio, job.size.upper())
        data = await self._render(width, height, "PNG", job.prompt)
        url = self._host(f"/files/{random_id(12)}.png", data, "image/png", fault)
        body = {"model": f"nano-banana-2-{job.size}", "created": int(time.time())}
        return web.json_response({**body, "images": [{"url": url}]})
