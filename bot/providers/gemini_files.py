"""The Gemini Files API: images a request cannot carry inline are uploaded once per key and referenced.

A request over the provider's inline limit sends its largest images as `fileData` parts instead
(bot/providers/gemini_body.py decides which). An uploaded file belongs to the project of the key that
uploaded it, so the uploads and the generateContent call that references them run with one key, and
the cache of uploads is kept per key: (key fingerprint, SHA-256 of the bytes) -> the file's URI.

Uploads use Google's resumable protocol: `start` opens an upload session (its URL comes back in the
X-Goog-Upload-URL header), then one `upload, finalize` POST sends the bytes and answers the File. The
shared HTTP client speaks JSON only, so these two exchanges are made here on the same session, with
the same timeouts, retry policy, telemetry and error mapping.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import aiohttp
import yarl
from pydantic import AliasChoices, AliasGenerator, ConfigDict
from pydantic.alias_generators import to_camel

from bot.errors import BadRequest, ProviderError, ProviderTimeout, ProviderUnavailable
from bot.i18n import Text
from bot.providers.base import ImageData
from bot.providers.common import ProviderBase
from bot.providers.gemini_body import Draft, Move, with_files
from bot.providers.http import RETRY_STATUSES, ErrorMapper
from bot.providers.pacing import sending
from bot.providers.retry import Retryable, RetryOn, rate_limited, run, transient
from bot.providers.sanitize import reason
from bot.providers.slices import sliced, with_length
from bot.providers.wire import Loose, WireModel, parse

log = logging.getLogger(__name__)

Clock = Callable[[], float]

#: How long Google keeps an uploaded file, when its answer does not say.
FILE_LIFETIME = 48 * 3600.0
#: A cached file is used only while it has more than this left (a job may queue, then retry).
SAFETY_MARGIN = 3600.0
#: The most uploads remembered (per provider, all keys together); the least recently used go first.
CACHE_SIZE = 1024
#: Characters a file URI may take beyond the base URL when a body is sized (Google's ids are ~12).
URI_ROOM = 128
#: An upload's answer is a small JSON File; anything bigger is refused.
MAX_ANSWER = 1024 * 1024
UPLOAD_PATH = "/upload/v1beta/files"


@dataclass(frozen=True, slots=True)
class FileRef:
    """An uploaded file: its resource name (files/abc), URI, MIME type and when it expires (epoch s)."""

    name: str
    uri: str
    mime: str
    expires_at: float


class FileCache:
    """Uploads by (key fingerprint, SHA-256), least recently used first out; stale entries read as absent."""

    def __init__(
        self, size: int = CACHE_SIZE, clock: Clock = time.time, margin: float = SAFETY_MARGIN
    ) -> None:
        self._entries: OrderedDict[tuple[str, str], FileRef] = OrderedDict()
        self._size = size
        self.clock = clock
        self._margin = margin

    def __len__(self) -> int:
        """How many uploads are remembered."""
        return len(self._entries)

    def get(self, slot: tuple[str, str]) -> FileRef | None:
        """The upload, while it has more than the margin left."""
        ref = self._entries.get(slot)
        if ref is None:
            return None
        if ref.expires_at - self.clock() <= self._margin:
            del self._entries[slot]
            return None
        self._entries.move_to_end(slot)
        return ref

    def put(self, slot: tuple[str, str], ref: FileRef) -> None:
        """Remember an upload, forgetting the least recently used beyond the size."""
        self._entries[slot] = ref
        self._entries.move_to_end(slot)
        while len(self._entries) > self._size:
            self._entries.popitem(last=False)

    def drop(self, slot: tuple[str, str]) -> None:
        """Forget an upload (the server no longer has it)."""
        self._entries.pop(slot, None)


def fingerprint(key: str | None) -> str:
    """A key's cache identity: a short hash, never the key itself."""
    return hashlib.sha256(key.encode()).hexdigest()[:16] if key else "-"


class _Google(WireModel):
    """Google's JSON is camelCase; proxies that re-serialise the SDK's objects send snake_case."""

    model_config = ConfigDict(
        alias_generator=AliasGenerator(validation_alias=lambda name: AliasChoices(to_camel(name), name))
    )


class _File(_Google):
    """A File resource: its name and URI are what a request needs; the rest is bookkeeping."""

    name: str
    uri: str
    mime_type: Loose[str] = None
    expiration_time: Loose[str] = None
    state: Loose[str] = None


class _Uploaded(_Google):
    """The answer to `upload, finalize`."""

    file: _File


@dataclass(frozen=True, slots=True)
class _Reply:
    """One raw exchange's answer."""

    status: int
    headers: Mapping[str, str]
    body: bytes


def _expiry(value: str | None, now: float) -> float:
    """An RFC 3339 expirationTime as epoch seconds (48 h from now when absent or unreadable)."""
    try:
        return datetime.fromisoformat(value or "").timestamp()
    except ValueError:
        return now + FILE_LIFETIME


def _names_file(body: Any) -> bool:
    """Whether an error's message is about a File ("...permission to access the File abc...")."""
    error = body.get("error") if isinstance(body, dict) else None
    message = error.get("message") if isinstance(error, dict) else None
    return isinstance(message, str) and " File " in f" {message} "


class GeminiFiles:
    """Uploads a Gemini provider's oversized images once per key and sends the calls that use them."""

    def __init__(self, provider: ProviderBase, clock: Clock = time.time) -> None:
        self.provider = provider
        self.cache = FileCache(clock=clock)
        #: One upload at a time per (key, image): concurrent calls of a job share it.
        self._locks: weakref.WeakValueDictionary[tuple[str, str], asyncio.Lock] = (
            weakref.WeakValueDictionary()
        )

    @property
    def uri_room(self) -> int:
        """The longest file URI a body is sized for."""
        return len(self.provider.base_url) + URI_ROOM

    async def generate(self, key: str | None, url: str, draft: Draft, moves: Sequence[Move]) -> Any:
        """generateContent with the moved images as files of this key's project.

        A file the server no longer has (deleted or expired early) is dropped from the cache, uploaded
        again and the call made once more.
        """
        refs = await self._refs(key, moves)
        gone: list[int] = []
        try:
            return await self._post(key, url, draft, moves, refs, gone)
        except BadRequest:
            if not gone:
                raise
        # Google names one file per refusal; whatever removed it (files.delete, a cleanup) may have
        # taken the others too, and a second refusal would fail the job: all are uploaded again.
        log.info("%s: an uploaded image was gone before its expiry; uploading again", self.provider.name)
        for digest in refs:
            self.cache.drop((fingerprint(key), digest))
        refs = await self._refs(key, moves)
        return await self._post(key, url, draft, moves, refs, [])

    async def _post(
        self,
        key: str | None,
        url: str,
        draft: Draft,
        moves: Sequence[Move],
        refs: Mapping[str, FileRef],
        gone: list[int],
    ) -> Any:
        """The call itself, its files in place; a missing file's 403/404 is noted in gone."""
        p = self.provider
        files = {digest: (ref.mime, ref.uri) for digest, ref in refs.items()}
        body = await asyncio.to_thread(draft.but(with_files(draft.skeleton, moves, files)).encode)
        sending(billed=True)  # uploads are free: a cancel is charged only from this request on
        return await p.http.request_json(
            "POST",
            url,
            provider=p.name,
            mapper=self._file_mapper(gone),
            limits=p.limits,
            headers=p.auth_headers(key),
            body=body,
        )

    def _file_mapper(self, gone: list[int]) -> ErrorMapper:
        """The provider's mapper, except that "no access to File x" is a request error, not the key's
        (a 403 would otherwise rest a good key); it is noted in gone."""
        base = self.provider.error_mapper()

        def mapper(status: int, body: Any, headers: Mapping[str, str]) -> ProviderError:
            if status not in (403, 404) or not _names_file(body):
                return base(status, body, headers)
            gone.append(status)
            name = self.provider.name
            return BadRequest(Text("provider.files.gone", provider=name, why=reason(status)), provider=name)

        return mapper

    async def _refs(self, key: str | None, moves: Sequence[Move]) -> dict[str, FileRef]:
        """Each moved image's file for this key: from the cache, else uploaded now (each image once)."""
        images = {m.digest: m.image for m in moves}
        refs = await asyncio.gather(*(self._ref(key, digest, image) for digest, image in images.items()))
        return dict(zip(images, refs, strict=True))

    async def _ref(self, key: str | None, digest: str, image: ImageData) -> FileRef:
        """The cached file, or a fresh upload (calls waiting on the same image share it)."""
        slot = (fingerprint(key), digest)
        lock = self._locks.setdefault(slot, asyncio.Lock())
        async with lock:
            ref = self.cache.get(slot)
            if ref is None:
                ref = await self.upload(key, image, digest)
                self.cache.put(slot, ref)
            return ref

    async def upload(self, key: str | None, image: ImageData, digest: str) -> FileRef:
        """Upload one image (start, then upload and finalize), wait until it is usable, and name it."""
        started = time.monotonic()
        session = await self._start(key, image, digest)
        file = await self._send_bytes(key, session, image)
        if file.state == "PROCESSING":
            file = await self._wait_active(key, file)
        if file.state not in (None, "ACTIVE"):
            raise ProviderUnavailable(
                f"{self.provider.name} could not process an uploaded image ({file.state})",
                provider=self.provider.name,
            )
        log.info(
            "%s: uploaded a %.1f MB image as %s in %.1f s",
            self.provider.name,
            len(image.data) / 1e6,
            file.name,
            time.monotonic() - started,
        )
        expires = _expiry(file.expiration_time, self.cache.clock())
        return FileRef(file.name, file.uri, file.mime_type or image.mime, expires)

    async def _start(self, key: str | None, image: ImageData, digest: str) -> str:
        """Open an upload session; its URL must stay on the provider's origin (it gets the key)."""
        headers = {
            **self.provider.auth_headers(key),
            "X-Goog-Upload-Protocol": "resumable",
            "X-Goog-Upload-Command": "start",
            "X-Goog-Upload-Header-Content-Length": str(len(image.data)),
            "X-Goog-Upload-Header-Content-Type": image.mime,
            "Content-Type": "application/json",
        }
        metadata = json.dumps({"file": {"displayName": f"nanobot-{digest[:16]}"}}).encode()
        url = self.provider.base_url + UPLOAD_PATH
        # Opening a session creates nothing that lasts: retried like any idempotent call.
        reply = await self._exchange(url, headers, metadata, retry_on=transient)
        session = reply.headers.get("X-Goog-Upload-URL", "")
        if not _same_origin(session, url):
            raise ProviderUnavailable(
                f"{self.provider.name} gave no usable upload address; refused", provider=self.provider.name
            )
        return session

    async def _send_bytes(self, key: str | None, session: str, image: ImageData) -> _File:
        """Send the bytes and finalize: the file exists once this succeeds, so only a 429 is retried."""
        headers = {
            **self.provider.auth_headers(key),
            "X-Goog-Upload-Command": "upload, finalize",
            "X-Goog-Upload-Offset": "0",
            "Content-Type": image.mime,
        }
        reply = await self._exchange(session, headers, image.data, retry_on=rate_limited)
        if reply.headers.get("X-Goog-Upload-Status", "final").lower() != "final":
            raise ProviderUnavailable(
                f"{self.provider.name} did not finish an image upload", provider=self.provider.name
            )
        return parse(_Uploaded, _try_json(reply.body), self.provider.name).file  # not JSON: BadResponse

    async def _wait_active(self, key: str | None, file: _File) -> _File:
        """Poll files.get until the file is processed, within the provider's polling deadline."""
        p = self.provider
        deadline = time.monotonic() + p.limits.poll_deadline
        while file.state == "PROCESSING":
            if time.monotonic() > deadline:
                raise ProviderTimeout(Text("provider.timeout.processing", provider=p.name), provider=p.name)
            await asyncio.sleep(p.limits.poll_interval)
            data = await p.send_with(key, "GET", f"{p.base_url}/v1beta/{file.name}")
            file = parse(_File, data, p.name)
        return file

    async def _exchange(
        self, url: str, headers: Mapping[str, str], data: bytes, *, retry_on: RetryOn
    ) -> _Reply:
        """POST raw bytes and keep the answer's headers, under the shared retry policy."""
        p = self.provider
        policy = p.http.policy

        async def once() -> _Reply:
            started = time.monotonic()
            try:
                return await self._once(url, headers, data)
            finally:
                policy.telemetry.request_done(p.name, time.monotonic() - started)

        return await run(policy, once, provider=p.name, retry_on=retry_on)

    async def _once(self, url: str, headers: Mapping[str, str], data: bytes) -> _Reply:
        """One upload exchange, each failure as its typed error (retryable ones as Retryable)."""
        p = self.provider
        timeout = aiohttp.ClientTimeout(total=p.limits.request_timeout, sock_connect=p.limits.connect_timeout)
        try:
            async with p.http.session.post(
                url,
                headers=with_length(headers, data),
                data=sliced(data),
                timeout=timeout,
                allow_redirects=False,
            ) as resp:
                body = await _read_small(resp, p.name)
                reply = _Reply(resp.status, resp.headers, body)
        except TimeoutError as e:
            seconds = f"{p.limits.request_timeout:.0f}"
            late = Text("provider.timeout.upload", provider=p.name, seconds=seconds)
            raise ProviderTimeout(late, provider=p.name) from e
        except aiohttp.ClientError as e:
            unreachable = ProviderUnavailable(
                f"{p.name} could not be reached for an image upload ({type(e).__name__})", provider=p.name
            )
            raise Retryable(unreachable, e) from e
        if reply.status >= 300:
            raise self._upload_error(reply)
        return reply

    def _upload_error(self, reply: _Reply) -> BaseException:
        """The typed error of a failed upload exchange (wrapped as Retryable when worth another try)."""
        p = self.provider
        if reply.status in (404, 405, 501):  # most likely a Gemini-compatible host without the Files API
            why, limit = reason(reply.status), f"{p.config.inline_limit_mb:g}"
            refused = Text("provider.files.unsupported", provider=p.name, why=why, limit=limit)
            return BadRequest(refused, provider=p.name)
        if reply.status < 400:
            return ProviderUnavailable(
                f"{p.name} sent an unexpected answer (HTTP {reply.status})", provider=p.name
            )
        error = p.error_mapper()(reply.status, _try_json(reply.body), reply.headers)
        if reply.status in RETRY_STATUSES and error.retryable:
            return Retryable(error, None)
        return error


async def _read_small(resp: aiohttp.ClientResponse, provider: str) -> bytes:
    """Read an upload's answer, refusing one bigger than MAX_ANSWER."""
    body = bytearray()
    async for chunk in resp.content.iter_chunked(64 * 1024):
        body += chunk
        if len(body) > MAX_ANSWER:
            raise ProviderUnavailable(f"{provider} sent an oversized answer to an upload", provider=provider)
    return bytes(body)


def _try_json(body: bytes) -> Any:
    """JSON if the body parses, else None."""
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None


def _same_origin(url: str, base: str) -> bool:
    """Whether url is an absolute http(s) URL on base's scheme, host and port."""
    try:
        target, origin = yarl.URL(url), yarl.URL(base)
    except ValueError:
        return False
    same = (target.scheme, target.host, target.port) == (origin.scheme, origin.host, origin.port)
    return target.is_absolute() and same
