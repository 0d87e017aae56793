"""REST routes of the fake Discord: request parsing, recording, auth and fault injection."""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from aiohttp import BodyPartReader, web

from tests.fakes.discord.limits import MAX_REQUEST_BYTES, DiscordError, too_large

if TYPE_CHECKING:
    from tests.fakes.discord import FakeDiscord

log = logging.getLogger(__name__)

API_PREFIX = "/api/v10"
CLIENT_MAX_SIZE = 64 * 1024 * 1024
NO_AUTH_PREFIXES = ("/webhooks/", "/interactions/")
NO_AUTH_PATHS = ("/gateway",)
FILE_PART = re.compile(r"^files\[(\d+)\]$")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class RecordedRequest:
    """One HTTP request the bot made to the fake, with the status the fake returned."""

    method: str
    path: str
    route: str
    query: dict[str, str]
    headers: dict[str, str]
    json: Any
    files: list[tuple[str, str, bytes]]
    status: int
    time: float


@dataclass
class Body:
    """A decoded request body: JSON (or multipart payload_json) and uploaded files."""

    json: Any = None
    files: list[tuple[str, str, bytes]] = field(default_factory=list)
    size: int = 0


BODY_KEY = web.RequestKey("fake_body", Body)


@dataclass
class Fault:
    """A queued injected failure."""

    method: str
    pattern: re.Pattern[str]
    status: int
    count: int
    retry_after: float
    via: bool
    code: int
    message: str | None

    def matches(self, method: str, path: str) -> bool:
        """Whether this fault applies to the request (path with or without /api/v10)."""
        if self.count <= 0 or self.method not in ("*", method):
            return False
        return bool(self.pattern.search(path) or self.pattern.search(API_PREFIX + path))

    def response(self) -> web.Response:
        """Build the injected error response."""
        self.count -= 1
        if self.status == 429:
            body = {
                "message": self.message or "You are being rate limited.",
                "retry_after": self.retry_after,
                "global": False,
                "code": self.code,
            }
            headers = {"Retry-After": str(max(1, round(self.retry_after)))}
            headers["X-RateLimit-Scope"] = "user"
            if self.via:
                headers["Via"] = "1.1 google"
            return json_response(body, 429, headers)
        message = self.message or f"{self.status}: {HTTPStatus(self.status).phrase}"
        return json_response({"message": message, "code": self.code}, self.status)


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """A JSON response whose Content-Type is exactly `application/json` (what discord.py needs)."""
    return web.Response(
        body=json.dumps(data).encode(),
        status=status,
        content_type="application/json",
        headers=headers,
    )


def no_content() -> web.Response:
    """A 204 response."""
    return web.Response(status=204)


def api_path(request: web.Request) -> str:
    """The request path relative to the API base (CDN and gateway paths unchanged)."""
    return request.path.removeprefix(API_PREFIX)


def route_template(request: web.Request) -> str:
    """The matched route template, e.g. /channels/{channel_id}/messages."""
    resource = request.match_info.route.resource
    canonical = resource.canonical if resource is not None else request.path
    return canonical.removeprefix(API_PREFIX)


def file_index(part_name: str) -> int | None:
    """The n of a `files[n]` multipart part."""
    match = FILE_PART.match(part_name)
    return int(match.group(1)) if match else None


async def parse_body(request: web.Request) -> Body:
    """Decode a JSON or multipart body once and cache it on the request."""
    cached: Body | None = request.get(BODY_KEY)
    if cached is not None:
        return cached
    body = Body()
    request[BODY_KEY] = body
    if request.method in ("GET", "HEAD", "DELETE") and not request.can_read_body:
        return body
    if request.content_type.startswith("multipart/"):
        await _read_multipart(request, body)
    else:
        raw = await request.read()
        body.size = len(raw)
        body.json = _loads(raw)
    if body.size > MAX_REQUEST_BYTES:
        raise too_large(f"{request.method} {api_path(request)}", f"body is {body.size} bytes")
    return body


def _loads(raw: bytes) -> Any:
    """Parse JSON or raise Discord's invalid JSON error."""
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise DiscordError(400, 50109, "The request body contains invalid JSON.") from exc


async def _read_multipart(request: web.Request, body: Body) -> None:
    """Read `payload_json` and `files[n]` parts."""
    reader = await request.multipart()
    total = 0
    while True:
        part = await reader.next()
        if part is None:
            break
        if not isinstance(part, BodyPartReader):
            continue
        data = bytes(await part.read(decode=False))
        total += len(data)
        if part.name == "payload_json":
            body.json = _loads(data)
        elif part.filename is not None:
            body.files.append((part.name or "", part.filename, data))
    body.size = request.content_length or total


def query_flag(request: web.Request, name: str) -> bool:
    """Interpret a boolean query parameter the way Discord does."""
    return request.query.get(name, "").lower() in ("1", "true")


class Recorder:
    """Middleware: records requests, checks bot auth, injects faults, renders DiscordError."""

    def __init__(self, fake: FakeDiscord) -> None:
        self.fake = fake
        self.faults: list[Fault] = []

    def middleware(self) -> Any:
        """Return the aiohttp middleware function."""

        @web.middleware
        async def recorder(request: web.Request, handler: Handler) -> web.StreamResponse:
            return await self._handle(request, handler)

        return recorder

    async def _handle(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Run one request through auth, faults and the handler, and record it."""
        started = time.monotonic()
        try:
            response = await self._respond(request, handler)
        except DiscordError as exc:
            if exc.violation:
                self.fake._violation(exc.violation)
            response = json_response(exc.body(), exc.status)
        except web.HTTPException:
            raise
        except Exception as exc:
            log.exception("fake Discord failed on %s %s", request.method, request.path)
            self.fake._violation(f"fake: internal error on {request.method} {request.path}: {exc!r}")
            response = json_response({"message": "500: Internal Server Error", "code": 0}, 500)
        if request.path.startswith(API_PREFIX) or request.path.startswith("/cdn/"):
            self._record(request, response.status, started)
        return response

    async def _respond(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Check auth and faults, then call the handler."""
        path = api_path(request)
        if request.path.startswith(API_PREFIX):
            self._check_auth(request, path)
            fault = next((f for f in self.faults if f.matches(request.method, path)), None)
            if fault is not None:
                await parse_body(request)
                return fault.response()
        return await handler(request)

    def _check_auth(self, request: web.Request, path: str) -> None:
        """Require `Authorization: Bot <token>` except on webhook/interaction routes."""
        if path.startswith(NO_AUTH_PREFIXES) or path in NO_AUTH_PATHS:
            return
        if request.headers.get("Authorization") != f"Bot {self.fake.token}":
            raise DiscordError(401, 0, "401: Unauthorized")

    def _record(self, request: web.Request, status: int, started: float) -> None:
        """Append a RecordedRequest."""
        body = request.get(BODY_KEY) or Body()
        self.fake.requests.append(
            RecordedRequest(
                method=request.method,
                path=api_path(request),
                route=route_template(request),
                query=dict(request.query),
                headers=dict(request.headers),
                json=body.json,
                files=list(body.files),
                status=status,
                time=started,
            )
        )
