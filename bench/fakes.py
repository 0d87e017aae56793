"""Bench-only fake subclasses: provider-side timing, pre-made images, a Discord that keeps no bytes.

The benchmark measures the bot, so the fakes it runs beside (in the same process and event loop)
must stay out of the way: they serve pre-made images instead of rendering them, stream big files in
small chunks instead of buffering whole copies, and drop uploaded bytes once their size is known.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import json
import random
import re
import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from PIL import Image

from tests.fakes.discord import FakeDiscord
from tests.fakes.discord.interactions import InteractionFailed, InteractionHandle
from tests.fakes.discord.limits import MAX_REQUEST_BYTES, DiscordError, too_large
from tests.fakes.discord.payloads import JSON
from tests.fakes.discord.rest import BODY_KEY, Body, Recorder
from tests.fakes.imagegen import make_image
from tests.fakes.providers import FakeGemini, FakeOpenAIImages
from tests.fakes.providers.base import REC_KEY, FakeProvider, Handler

#: A job's tag travels in its prompt as "#tag#", so provider-side timings can be matched to jobs.
TAG = re.compile(r"#(\w+)#")
#: Set by a handler that streams its own body: the provider's work ended there, the transfer begins.
ANSWERED_AT = web.RequestKey("bench_answered_at", float)
STREAM_CHUNK = 256 * 1024
#: Seconds between a final-answer waiter's checks for an acknowledgement error.
ACK_ERROR_POLL = 1.0
MIB = 1024 * 1024


def prompt_for(tag: str) -> str:
    """The prompt of one bench job."""
    return f"a bench picture #{tag}#"


class LeanRecorder(Recorder):
    """The fake's recorder, minus the uploaded bytes, with a one-pass multipart parser.

    aiohttp's MultipartReader walks an 8 MiB upload in ~5,000 small reads (~45 ms of this loop's
    time per upload on a 2-core machine): that is the fake's cost, not the bot's. Reading the body
    at once and splitting it on the boundary leaves the same Body for the fake's routes to use.
    """

    async def _respond(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Pre-parse multipart bodies into the cache the fake's parse_body reads first."""
        if request.content_type.startswith("multipart/") and BODY_KEY not in request:
            request[BODY_KEY] = await _read_multipart(request)
        return await super()._respond(request, handler)

    def _record(self, request: web.Request, status: int, started: float) -> None:
        """Record, then forget the file bytes (sizes stay in the attachment objects)."""
        super()._record(request, status, started)
        recorded = self.fake.requests[-1]
        recorded.files = [(name, filename, b"") for name, filename, _ in recorded.files]
        # aiohttp's handler keeps an idle keep-alive connection's last request alive: drop its files.
        body = request.get(BODY_KEY)
        if body is not None:
            body.files = [(name, filename, b"") for name, filename, _ in body.files]


async def _read_multipart(request: web.Request) -> Body:
    """payload_json and files[n] of a multipart body, split in one pass (same limits as the fake)."""
    raw = await request.content.read()  # not request.read(): that keeps the body on the request
    boundary = _boundary(request.headers.get("Content-Type", ""))
    body = Body(size=request.content_length or len(raw))
    if body.size > MAX_REQUEST_BYTES:
        raise too_large(f"{request.method} {request.path}", f"body is {body.size} bytes")
    delimiter = b"--" + boundary.encode()
    position = raw.find(delimiter)
    while position != -1 and not raw.startswith(b"--", position + len(delimiter)):
        start = position + len(delimiter)
        end = raw.find(b"\r\n" + delimiter, start)
        head_end = raw.find(b"\r\n\r\n", start, end)
        if end == -1 or head_end == -1:
            raise DiscordError(400, 50035, "Invalid Form Body", violation="malformed multipart body")
        _add_part(body, raw[start:head_end], raw[head_end + 4 : end])
        position = end + 2
    return body


def _add_part(body: Body, head: bytes, data: bytes) -> None:
    """Keep payload_json as JSON and file parts as (name, filename, bytes)."""
    disposition = _header(head, "content-disposition")
    name, filename = _param(disposition, "name"), _param(disposition, "filename")
    if name == "payload_json":
        body.json = json.loads(data) if data else None
    elif filename is not None:
        body.files.append((name or "", filename, data))


def _boundary(content_type: str) -> str:
    """The boundary parameter of a multipart Content-Type."""
    match = re.search(r'boundary="?([^";]+)"?', content_type)
    if match is None:
        raise DiscordError(400, 50035, "Invalid Form Body", violation="multipart body without a boundary")
    return match.group(1)


def _header(head: bytes, name: str) -> str:
    """One header of a multipart part ("" when absent)."""
    for line in head.decode("utf-8", "replace").split("\r\n"):
        key, _, value = line.partition(":")
        if key.strip().lower() == name:
            return value.strip()
    return ""


def _param(disposition: str, name: str) -> str | None:
    """A quoted or bare parameter of a Content-Disposition header."""
    match = re.search(rf'(?:^|;)\s*{name}="([^"]*)"', disposition) or re.search(
        rf"(?:^|;)\s*{name}=([^;\s]+)", disposition
    )
    return match.group(1) if match else None


class BenchDiscord(FakeDiscord):
    """FakeDiscord that stamps when each answer became final and keeps no attachment bytes."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._recorder = LeanRecorder(self)
        #: message id → time.monotonic() when it first carried an embed or a file (a final answer;
        #: "thinking…", queue positions and progress only ever change the text).
        self.final_at: dict[str, float] = {}
        #: interaction id → a future set when its final answer appears (see wait_final).
        self._final_waiters: dict[str, asyncio.Future[None]] = {}
        #: Ids of messages that showed a live preview (a thought image) before their final answer.
        self.previewed: set[str] = set()

    async def add_users(self, count: int) -> list[str]:
        """Add `count` members (bench0, bench1, …) and wait until the bot was told about them."""
        names = [f"bench{n}" for n in range(len(self.users), len(self.users) + count)]
        for name in names:
            self.add_user(name)
        await asyncio.gather(*list(self._tasks))
        return names

    def final_answer(self, handle: InteractionHandle) -> JSON | None:
        """The interaction's result or error message, once there is one."""
        for msg in (handle.original, *handle.followups):
            if msg is not None and msg["id"] in self.final_at:
                return msg
        return None

    async def wait_final(self, handle: InteractionHandle, timeout: float) -> JSON:
        """Wait for the final answer (not the first visible text); InteractionFailed if none can come.

        Woken only when a message becomes final, not on every change: with hundreds of jobs, the
        fake's wake-every-waiter loop would cost this (shared) event loop more than the bot does.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while (answer := self.final_answer(handle)) is None and handle.ack_error is None:
            remaining = deadline - loop.time()
            if remaining <= 0:
                errors = handle.errors or "none"
                raise TimeoutError(f"no final answer to interaction {handle.id} (Discord errors: {errors})")
            future = self._final_waiters.setdefault(handle.id, loop.create_future())
            with contextlib.suppress(TimeoutError):  # wake now and then to notice an ack error
                await asyncio.wait_for(asyncio.shield(future), min(remaining, ACK_ERROR_POLL))
            self._final_waiters.pop(handle.id, None)
        if answer is None:
            raise InteractionFailed(f"interaction {handle.id}: {handle.ack_error}")
        return answer

    def upload_attachment(self, data: bytes, filename: str, content_type: str | None = None) -> JSON:
        """A member's upload keeps its bytes: the bot downloads it as a reference."""
        att = super().upload_attachment(data, filename, content_type)
        name, _, ctype = self._cdn[att["id"]]
        self._cdn[att["id"]] = (name, data, ctype)
        return att

    def _cdn_put(self, data: bytes, filename: str, content_type: str | None) -> JSON:
        """Store the attachment object (size, type, pixel size) but not the bytes."""
        att = super()._cdn_put(data, filename, content_type)
        name, _, ctype = self._cdn[att["id"]]
        self._cdn[att["id"]] = (name, b"", ctype)
        return att

    async def _store(self, msg: JSON) -> None:
        """Store a new message, stamping when it became final."""
        now = time.monotonic()
        await super()._store(msg)
        self._stamp(msg, now)

    async def _edit(self, msg: JSON, fields: JSON) -> None:
        """Apply an edit, stamping when the message became final."""
        now = time.monotonic()
        await super()._edit(msg, fields)
        self._stamp(msg, now)

    def _stamp(self, msg: JSON, now: float) -> None:
        """Remember the first moment a message carried an embed or a file (a live preview's thought
        image is neither final nor a result); wake its waiter."""
        files = msg.get("attachments") or []
        if files and all(str(a.get("filename", "")).startswith("preview.") for a in files):
            self.previewed.add(msg["id"])
            files = []
        if msg["id"] not in self.final_at and (msg.get("embeds") or files):
            self.final_at[msg["id"]] = now
            for interaction_id, future in list(self._final_waiters.items()):
                handle = self._interactions.get(interaction_id)
                if handle is not None and not future.done() and self.final_answer(handle) is not None:
                    future.set_result(None)


class TimedProvider(FakeProvider):
    """Mixin for a fake provider: time spent answering each job, and pre-made images to serve."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: job tag → seconds the provider spent in its generation handler(s) for that job.
        self.timings: defaultdict[str, float] = defaultdict(float)
        #: (width, height, format) → bytes served instead of rendering a new image.
        self.premade: dict[tuple[int, int, str], bytes] = {}

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Time every POST (generation) from arrival to the response being ready."""
        if request.method != "POST":
            return await super()._middleware(request, handler)
        started = time.perf_counter()
        try:
            return await super()._middleware(request, handler)
        finally:
            ended = request.get(ANSWERED_AT, time.perf_counter())
            self.timings[_tag_of(request)] += ended - started

    async def _render(self, width: int, height: int, fmt: str, seed: str) -> bytes:
        """The pre-made image of this size and format when there is one, else a rendered one."""
        data = self.premade.get((width, height, fmt))
        if data is None:
            return await super()._render(width, height, fmt, seed)
        self.outputs.append(data)
        return data

    async def _serve_file(self, request: web.Request) -> web.StreamResponse:  # type: ignore[override]
        """Stream hosted files in chunks (a real CDN does not sit in the bot's memory)."""
        entry = self._files.get(request.path)
        if entry is None:
            return self._file_missing(request)
        data, content_type = entry
        return await stream(request, 200, content_type, [data])


async def stream(
    request: web.Request, status: int, content_type: str, parts: list[bytes]
) -> web.StreamResponse:
    """Send parts as one body in small chunks, never copying a part whole."""
    request[ANSWERED_AT] = time.perf_counter()
    response = web.StreamResponse(status=status, headers={"Content-Type": content_type})
    response.content_length = sum(len(part) for part in parts)
    await response.prepare(request)
    for part in parts:
        view = memoryview(part)
        for start in range(0, len(part), STREAM_CHUNK):
            await response.write(view[start : start + STREAM_CHUNK])
    await response.write_eof()
    return response


def _tag_of(request: web.Request) -> str:
    """The job tag carried in a recorded request's prompt ("" when there is none)."""
    recorded = request.get(REC_KEY)
    if recorded is None:
        return ""
    text = json.dumps(recorded.json) if recorded.json is not None else json.dumps(recorded.form)
    match = TAG.search(text)
    return match.group(1) if match else ""


class BenchGemini(TimedProvider, FakeGemini):
    """FakeGemini with provider-side timing, serving pre-made images without re-encoding them.

    The real fake base64-encodes and JSON-dumps every image per answer (~20 ms and ~11 MB per 1K
    image in this process); here the answer is built around a tiny marker and the pre-made image's
    base64, computed once, is spliced in while the body streams out.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._spliced: dict[bytes, tuple[bytes, bytes]] = {}  # marker → (marker's base64, image's)

    async def _render(self, width: int, height: int, fmt: str, seed: str) -> bytes:
        """A marker standing for the pre-made image (which still counts as an output)."""
        data = await super()._render(width, height, fmt, seed)
        if (width, height, fmt) not in self.premade:
            return data
        marker = f"<bench image {width}x{height} {fmt}>".encode()
        if marker not in self._spliced:
            self._spliced[marker] = (base64.b64encode(marker), base64.b64encode(data))
        return marker

    async def _generate(self, request: web.Request, model: str) -> web.StreamResponse:  # type: ignore[override]
        """The fake's answer, with each marker's base64 replaced by the image's while streaming."""
        response = await super()._generate(request, model)
        body = response.body if isinstance(response, web.Response) else None
        if not isinstance(body, bytes):
            return response
        parts = [body]
        for token, image in self._spliced.values():
            parts = [piece for part in parts for piece in _splice(part, token, image)]
        if len(parts) == 1:
            return response
        return await stream(request, response.status, "application/json", parts)


def _splice(part: bytes, token: bytes, image: bytes) -> list[bytes]:
    """part with every occurrence of token replaced by image, as a list of pieces."""
    pieces = part.split(token)
    out = [pieces[0]]
    for piece in pieces[1:]:
        out += [image, piece]
    return out


class BenchRelay(TimedProvider, FakeOpenAIImages):
    """The OpenAI-style relay with timing, pre-made images and a choosable output format."""

    def __init__(self, *args: Any, output_format: str = "PNG", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.output_format = output_format

    def _format(self, kind: Any, params: dict[str, Any]) -> str:
        """Generations come back in output_format (the real relay always sends PNG)."""
        return self.output_format if kind == "generate" else super()._format(kind, params)


@dataclass(frozen=True)
class Assets:
    """The images the bench's providers serve, made once per run (off the event loop)."""

    png_1k: bytes  # a photo-like 1024² PNG, what Gemini 2.5 Flash sends at 1K
    noisy_png_4k: bytes  # the fake's own incompressible 4096² PNG (~48 MiB): must be re-encoded
    jpeg_4k: bytes  # a photo-like 4096² JPEG q90 (~8 MiB): fits Discord's 10 MiB as it is


def photo_like(side: int, fmt: str, seed: int) -> bytes:
    """Smooth random detail (upscaled noise): compresses like a photo, not like a solid colour."""
    rng = random.Random(seed)
    base = max(1, side // 4)
    small = Image.frombytes("RGB", (base, base), rng.randbytes(base * base * 3))
    image = small.resize((side, side), Image.Resampling.BICUBIC)
    buffer = io.BytesIO()
    if fmt == "PNG":
        image.save(buffer, "PNG", compress_level=1)
    else:
        image.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def make_assets() -> Assets:
    """Build every image once (blocking: call it in a worker thread)."""
    return Assets(
        png_1k=photo_like(1024, "PNG", seed=1),
        noisy_png_4k=make_image(4096, 4096, "PNG", noisy=True),
        jpeg_4k=photo_like(4096, "JPEG", seed=4),
    )
