"""Shared machinery for the fake image-provider HTTP servers (request recording, faults, files)."""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import secrets
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, ClassVar, Self
from urllib.parse import parse_qsl

from aiohttp import BodyPartReader, web

from tests.fakes.imagegen import color_for, make_image

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

CLIENT_MAX_SIZE = 128 * 1024**2
COMMON_FAULTS: frozenset[str] = frozenset(
    {
        "ok",
        "rate_limited",
        "server_error",
        "bad_gateway",
        "unavailable",
        "gateway_timeout",
        "hang",
        "malformed",
        "html",
        "reset",
        "bad_key",
        "url_private",
        "url_hostile",
        "redirect",
    }
)
HTML_ERROR_PAGE = (
    "<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8>"
    "<title>Error 502 (Server Error)!!1</title></head>"
    "<body><p><b>502.</b> <ins>That's an error.</ins></p>"
    "<p>The server encountered a temporary error and could not complete your request."
    "<p>Please try again in 30 seconds. <ins>That's all we know.</ins></body></html>\n"
)


@dataclass
class Fault:
    """A scripted outcome for the next generation-type call."""

    name: str
    retry_after: float | None = None
    status: int | None = None
    message: str | None = None
    hang: float = 600.0


@dataclass
class RecordedRequest:
    """One HTTP request as received by a fake."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    json: Any | None
    form: dict[str, list[str]]
    files: list[tuple[str, str, str, bytes]]
    body: bytes = field(default=b"", repr=False)


REC_KEY = web.RequestKey("rec", RecordedRequest)


class HeaderDict(dict[str, str]):
    """A plain dict of headers whose lookups ignore case (keys are stored lower-case)."""

    def __getitem__(self, key: str) -> str:
        """Case-insensitive item access."""
        return super().__getitem__(key.lower())

    def __contains__(self, key: object) -> bool:
        """Case-insensitive membership test."""
        return isinstance(key, str) and super().__contains__(key.lower())

    def get(self, key: str, default: Any = None) -> Any:
        """Case-insensitive get."""
        return super().get(key.lower(), default)


def _is_file_part(filename: str | None, content_type: str | None) -> bool:
    """Whether a multipart part carries a file rather than a text field."""
    if filename is not None:
        return True
    return content_type is not None and not content_type.startswith("text/")


async def _read_multipart(
    request: web.Request,
) -> tuple[dict[str, list[str]], list[tuple[str, str, str, bytes]]]:
    """Collect text fields and file parts from a multipart body."""
    form: dict[str, list[str]] = {}
    files: list[tuple[str, str, str, bytes]] = []
    reader = await request.multipart()
    while (part := await reader.next()) is not None:
        if not isinstance(part, BodyPartReader):
            continue
        data = await part.read(decode=True)
        content_type = part.headers.get("Content-Type")
        name = part.name or ""
        if _is_file_part(part.filename, content_type):
            ctype = content_type or "application/octet-stream"
            files.append((name, part.filename or "", ctype, bytes(data)))
        else:
            form.setdefault(name, []).append(bytes(data).decode("utf-8", "replace"))
    return form, files


async def record_request(request: web.Request) -> RecordedRequest:
    """Read and parse the whole request body into a RecordedRequest."""
    form: dict[str, list[str]] = {}
    files: list[tuple[str, str, str, bytes]] = []
    body = b""
    parsed: Any | None = None
    if request.content_type.startswith("multipart/"):
        form, files = await _read_multipart(request)
    elif request.body_exists:
        body = await request.read()
        if request.content_type == "application/x-www-form-urlencoded":
            for key, value in parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True):
                form.setdefault(key, []).append(value)
        elif body:
            try:
                parsed = json.loads(body)
            except ValueError:
                parsed = None
    headers = HeaderDict((k.lower(), v) for k, v in request.headers.items())
    return RecordedRequest(
        method=request.method,
        path=request.path,
        query=dict(request.query),
        headers=headers,
        json=parsed,
        form=form,
        files=files,
        body=body,
    )


def bearer_token(request: web.Request) -> str | None:
    """The token of an `Authorization: Bearer` header, if any."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def request_key(request: web.Request) -> str | None:
    """The API key a request carries: Gemini's header or query parameter, else a Bearer token."""
    return request.headers.get("x-goog-api-key") or request.query.get("key") or bearer_token(request)


def decode_base64(text: str) -> bytes | None:
    """Decode standard or URL-safe base64 (padding optional), or None if invalid."""
    cleaned = "".join(text.split())
    cleaned += "=" * (-len(cleaned) % 4)
    try:
        if "-" in cleaned or "_" in cleaned:
            return base64.urlsafe_b64decode(cleaned)
        return base64.b64decode(cleaned, validate=True)
    except (binascii.Error, ValueError):
        return None


def b64(data: bytes) -> str:
    """Standard base64 text of some bytes."""
    return base64.b64encode(data).decode("ascii")


def format_seconds(value: float) -> str:
    """Render seconds like a proto Duration without trailing zeros ("0.2", "36")."""
    return f"{value:.9f}".rstrip("0").rstrip(".")


def truncated_json(payload: Any) -> str:
    """A JSON document cut off in the middle."""
    text = json.dumps(payload)
    return text[: max(1, len(text) // 2)]


def random_id(nbytes: int = 16) -> str:
    """An opaque URL-safe identifier."""
    return secrets.token_urlsafe(nbytes)


class FakeProvider:
    """Base class: an aiohttp server on 127.0.0.1 with request recording and scripted faults."""

    FAULTS: ClassVar[frozenset[str]] = COMMON_FAULTS

    def __init__(self, api_key: str | None = None, *, api_keys: Sequence[str] = ()) -> None:
        """Configure the fake (api_keys: further valid keys); nothing listens until start()."""
        self.api_key = api_key or (api_keys[0] if api_keys else None)
        self.valid_keys = frozenset(k for k in (api_key, *api_keys) if k)
        self._key_queues: dict[str, deque[Fault]] = {}
        self.requests: list[RecordedRequest] = []
        self.delay: float = 0.0
        #: When True, output images are incompressible noise (for upload-size tests).
        self.noisy: bool = False
        self.calls: int = 0
        self.outputs: list[bytes] = []
        self._queue: deque[Fault] = deque()
        self._holds: deque[asyncio.Event] = deque()
        self._files: dict[str, tuple[bytes, str]] = {}
        self._counter = 0
        self._runner: web.AppRunner | None = None
        self._port: int | None = None

    @property
    def base_url(self) -> str:
        """Root URL of the running server, without a trailing slash."""
        if self._port is None:
            raise RuntimeError(f"{type(self).__name__} is not started")
        return f"http://127.0.0.1:{self._port}"

    async def start(self) -> None:
        """Start serving on a random local port."""
        app = web.Application(client_max_size=CLIENT_MAX_SIZE, middlewares=[self._middleware])
        self._add_routes(app)
        runner = web.AppRunner(app, access_log=None, handler_cancellation=True, shutdown_timeout=0.5)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        self._runner = runner
        self._port = runner.addresses[0][1]

    async def stop(self) -> None:
        """Stop the server (idempotent)."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        """Start the server."""
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop the server."""
        await self.stop()

    def script(self, *outcomes: Fault | str) -> None:
        """Queue outcomes for the next generation-type calls (strings mean Fault(name))."""
        self._queue.extend(self._faults(outcomes))

    def clear_script(self) -> None:
        """Forget every queued outcome: the provider is well again."""
        self._queue.clear()
        self._key_queues.clear()

    def script_for_key(self, key: str, *outcomes: Fault | str) -> None:
        """Queue outcomes for the next generation-type calls made with this key (before `script`'s)."""
        self._key_queues.setdefault(key, deque()).extend(self._faults(outcomes))

    def _faults(self, outcomes: Sequence[Fault | str]) -> list[Fault]:
        """Validate scripted outcomes (strings mean Fault(name))."""
        faults = [Fault(o) if isinstance(o, str) else o for o in outcomes]
        for fault in faults:
            if fault.name not in self.FAULTS:
                raise ValueError(f"{type(self).__name__} has no fault named {fault.name!r}")
        return faults

    def hold_next(self, count: int = 1) -> asyncio.Event:
        """Make the next `count` generation calls wait (recorded, unanswered) until the event is set.

        A test holds a call to keep a job running for exactly as long as it needs, instead of a
        delay that the machine's speed may outrun.
        """
        gate = asyncio.Event()
        self._holds.extend([gate] * count)
        return gate

    def accepts(self, key: str | None) -> bool:
        """Whether a key is one of the fake's valid keys."""
        return key is not None and key in self.valid_keys

    # -- hooks for subclasses -------------------------------------------------------------

    def _add_routes(self, app: web.Application) -> None:
        """Register the provider's routes."""
        raise NotImplementedError

    def _route_not_found(self, request: web.Request) -> web.Response:
        """Answer for an unknown path or method."""
        return web.json_response({"error": "Not found"}, status=404)

    def _sample_body(self) -> Any:
        """A success-shaped payload, used to build the "malformed" response."""
        return {"data": [{"url": "http://127.0.0.1/x.png"}]}

    # -- request plumbing -----------------------------------------------------------------

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Record every request, then dispatch; unknown routes get the provider's 404."""
        recorded = await record_request(request)
        self.requests.append(recorded)
        request[REC_KEY] = recorded
        try:
            return await handler(request)
        except (web.HTTPNotFound, web.HTTPMethodNotAllowed):
            return self._route_not_found(request)

    def _next_fault(self, request: web.Request | None = None) -> Fault:
        """Pop the next outcome scripted for the request's key, else the next one (ok when none)."""
        keyed = self._key_queues.get(request_key(request) or "") if request is not None else None
        if keyed:
            return keyed.popleft()
        return self._queue.popleft() if self._queue else Fault("ok")

    def _recorded(self, request: web.Request) -> RecordedRequest:
        """The RecordedRequest the middleware stored for this request."""
        return request[REC_KEY]

    async def _pause(self, fault: Fault) -> None:
        """Wait for a held call's release, sleep for the configured delay, plus the hang time for a
        "hang" fault."""
        if self._holds:
            await self._holds.popleft().wait()
        if self.delay > 0:
            await asyncio.sleep(self.delay)
        if fault.name == "hang":
            await asyncio.sleep(fault.hang)

    def _transport_fault(self, request: web.Request, fault: Fault) -> web.Response | None:
        """Answer the faults every provider shares at the transport level (reset/malformed/html)."""
        if fault.name == "reset":
            if request.transport is not None:
                request.transport.abort()
            return web.Response(status=500)
        if fault.name == "malformed":
            text = truncated_json(self._sample_body())
            return web.Response(status=fault.status or 200, text=text, content_type="application/json")
        if fault.name == "html":
            return web.Response(status=fault.status or 200, text=HTML_ERROR_PAGE, content_type="text/html")
        if fault.name == "redirect":  # a hostile or misconfigured API pointing the call elsewhere
            location = (fault.message or "{path}").format(
                port=self._port, base=self.base_url, path=request.path_qs
            )
            return web.Response(status=fault.status or 307, headers={"Location": location})
        return None

    # -- images and hosted files ----------------------------------------------------------

    def _next_color(self, seed: str) -> tuple[int, int, int]:
        """A colour unique to this call: hash of the seed and a per-fake counter."""
        self._counter += 1
        return color_for(f"{seed}|{self._counter}|{id(self)}")

    async def _encode(self, width: int, height: int, fmt: str, seed: str) -> bytes:
        """Encode a uniquely coloured image off the event loop."""
        color = self._next_color(seed)
        return await asyncio.to_thread(make_image, width, height, fmt, color, self.noisy)

    async def _render(self, width: int, height: int, fmt: str, seed: str) -> bytes:
        """Encode an output image and remember it in `outputs`."""
        data = await self._encode(width, height, fmt, seed)
        self.outputs.append(data)
        return data

    def _host(self, path: str, data: bytes, content_type: str, fault: Fault) -> str:
        """Serve bytes at path (honouring url_404 / url_not_image) and return the absolute URL."""
        if fault.name == "url_not_image":
            self._files[path] = (HTML_ERROR_PAGE.encode(), content_type)
        elif fault.name != "url_404":
            self._files[path] = (data, content_type)
        if fault.name == "url_private":  # a hostile provider pointing us at a cloud metadata address
            return f"http://169.254.169.254/latest/meta-data{path}"
        if fault.name == "url_hostile":  # any address a hostile provider may hand out (message)
            template = fault.message or "file:///etc/passwd"
            return template.format(port=self._port, path=path)
        return f"{self.base_url}{path}"

    def _file_missing(self, request: web.Request) -> web.Response:
        """Answer for a hosted file that does not exist."""
        return self._route_not_found(request)

    async def _serve_file(self, request: web.Request) -> web.Response:
        """GET handler for hosted result files."""
        entry = self._files.get(request.path)
        if entry is None:
            return self._file_missing(request)
        data, content_type = entry
        headers = {"Cache-Control": "public, max-age=3600"}
        return web.Response(body=data, content_type=content_type, headers=headers)

    def local_file(self, url: str) -> bytes | None:
        """Bytes of a file this fake hosts, given its absolute URL (None otherwise)."""
        if self._port is None or not url.startswith(self.base_url + "/"):
            return None
        entry = self._files.get(url[len(self.base_url) :].split("?", 1)[0])
        return entry[0] if entry else None
