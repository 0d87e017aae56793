"""Shared HTTP: one aiohttp session, bounded retries, JSON parsing once, capped image downloads."""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Collection, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from functools import partial
from typing import Any

import aiohttp
import yarl

from bot.errors import InputError, ProviderError, ProviderTimeout, ProviderUnavailable
from bot.i18n import Text
from bot.imaging import Arrival, current_intake, sniff_mime
from bot.providers.base import ImageData
from bot.providers.netguard import check_url
from bot.providers.retry import Retryable, RetryPolicy, run
from bot.providers.slices import sliced, with_length
from bot.providers.wire import Base64, Base64Blob, loads

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
REDIRECTS = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECTS = 3
#: Bodies larger than this are parsed in a worker thread.
BIG_BODY = 256 * 1024
#: Maps a non-2xx answer (status, parsed JSON or None, headers) to a typed error. The raw body is
#: not passed on: whatever answered (an internal page, a proxy) must never reach a user verbatim.
ErrorMapper = Callable[[int, Any, Mapping[str, str]], ProviderError]
FormFactory = Callable[[], aiohttp.FormData]


@dataclass(frozen=True, slots=True)
class Limits:
    """Timeouts and size caps for one provider's calls."""

    request_timeout: float = 300.0
    connect_timeout: float = 15.0
    download_timeout: float = 60.0
    max_download_bytes: int = 50 * 1024 * 1024
    max_response_bytes: int = 256 * 1024 * 1024
    poll_interval: float = 3.0
    poll_deadline: float = 600.0


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def _decode_json(body: bytes, content_type: str, provider: str) -> Any:
    """Parse a 2xx body as JSON (large ones with their base64 images left in the body), or explain
    what came back instead."""
    try:
        return loads(body) if len(body) > BIG_BODY else json.loads(body)
    except (ValueError, UnicodeDecodeError):
        if "html" in content_type or body.lstrip()[:1] == b"<":
            raise ProviderUnavailable(
                f"{provider} answered with an HTML page instead of a result; try again later",
                provider=provider,
            ) from None
        raise ProviderUnavailable(
            f"{provider} sent a malformed answer (not valid JSON); try again later",
            provider=provider,
        ) from None


class HttpClient:
    """All provider traffic goes through here, on the one session opened at start.

    Each exchange with a provider's API is timed and each retry counted on the policy's telemetry.
    """

    def __init__(self, session: aiohttp.ClientSession, policy: RetryPolicy | None = None) -> None:
        self.session = session
        self.policy = policy or RetryPolicy()

    async def request_json(
        self,
        method: str,
        url: str,
        *,
        provider: str,
        mapper: ErrorMapper,
        limits: Limits,
        headers: Mapping[str, str] | None = None,
        json_body: Any = None,
        form: FormFactory | None = None,
        body: bytes | None = None,
        retry: bool = True,
    ) -> Any:
        """Send a request and return its parsed JSON, retrying transient failures within the policy."""
        # json_body is serialised by aiohttp on the event loop: a big body comes encoded, as body.
        if sum(part is not None for part in (json_body, form, body)) > 1:
            raise ValueError("request_json takes one of json_body, form and body")
        once = partial(
            self._once,
            method,
            url,
            provider=provider,
            mapper=mapper,
            limits=limits,
            headers=headers,
            json_body=json_body,
            form=form,
            body=body,
        )
        return await run(self.policy if retry else self.policy.single(), once, provider=provider)

    async def _once(
        self,
        method: str,
        url: str,
        *,
        provider: str,
        mapper: ErrorMapper,
        limits: Limits,
        headers: Mapping[str, str] | None,
        json_body: Any,
        form: FormFactory | None,
        body: bytes | None,
    ) -> Any:
        """One attempt, following same-origin redirects: retryable failures become Retryable."""
        call = _Call(method, url, json_body, form, body)
        for _ in range(MAX_REDIRECTS + 1):
            answer = await self._send(call, provider=provider, limits=limits, headers=headers)
            if answer.status not in REDIRECTS or not answer.headers.get("Location"):
                return await self._answer(answer, provider=provider, mapper=mapper)
            call = await _next_hop(call, answer, provider)
        raise ProviderUnavailable(
            f"{provider} redirected the request too many times; refused", provider=provider
        )

    async def _send(
        self, call: _Call, *, provider: str, limits: Limits, headers: Mapping[str, str] | None
    ) -> _Answer:
        """One HTTP exchange, redirects not followed (each hop is judged by _next_hop), timed."""
        started = time.monotonic()
        try:
            return await self._exchange(call, provider=provider, limits=limits, headers=headers)
        finally:
            self.policy.telemetry.request_done(provider, time.monotonic() - started)

    async def _exchange(
        self, call: _Call, *, provider: str, limits: Limits, headers: Mapping[str, str] | None
    ) -> _Answer:
        """Send the request and read the answer, each failure as its typed error."""
        timeout = aiohttp.ClientTimeout(total=limits.request_timeout, sock_connect=limits.connect_timeout)
        data: aiohttp.FormData | bytes | AsyncIterator[memoryview] | None = (
            call.form() if call.form is not None else None
        )
        if call.body is not None:  # encoded JSON: aiohttp would call it application/octet-stream
            headers = {**with_length(headers, call.body), "Content-Type": "application/json"}
            data = sliced(call.body)
        try:
            async with self.session.request(
                call.method,
                call.url,
                headers=headers,
                json=call.json_body if data is None else None,
                data=data,
                timeout=timeout,
                allow_redirects=False,
            ) as resp:
                if resp.status in REDIRECTS:  # the body of a redirect is never read or shown
                    return _Answer(resp.status, resp.headers, b"")
                body = await _read_capped(resp, limits.max_response_bytes, provider)
                return _Answer(resp.status, resp.headers, body)
        except TimeoutError as e:
            seconds = f"{limits.request_timeout:.0f}"
            late = Text("provider.timeout.answer", provider=provider, seconds=seconds)
            raise ProviderTimeout(late, provider=provider) from e
        except aiohttp.ClientError as e:
            unreachable = ProviderUnavailable(
                f"{provider} could not be reached ({type(e).__name__}); try again later",
                provider=provider,
            )
            raise Retryable(unreachable, e) from e

    async def _answer(self, answer: _Answer, *, provider: str, mapper: ErrorMapper) -> Any:
        """The parsed JSON of a final answer, or its typed error (retryable ones as Retryable)."""
        status, body = answer.status, answer.body
        if status >= 400:
            error = mapper(status, _try_json(body), answer.headers)
            if status in RETRY_STATUSES and error.retryable:  # the status and the kind must both allow it
                raise Retryable(error, None)
            raise error
        if status >= 300:
            raise ProviderUnavailable(
                f"{provider} sent an unexpected answer (HTTP {status})", provider=provider
            )
        content_type = answer.headers.get("Content-Type", "")
        if len(body) > BIG_BODY:  # megabytes of base64 would stall the event loop
            return await asyncio.to_thread(_decode_json, body, content_type, provider)
        return _decode_json(body, content_type, provider)

    async def download(
        self, url: str, *, provider: str, limits: Limits, trusted_hosts: Collection[str] = ()
    ) -> ImageData:
        """Fetch an image: public (or trusted) hosts only, redirects checked, capped, sniffed."""
        fetch = partial(
            self._follow, _Trail(url), provider=provider, limits=limits, trusted_hosts=trusted_hosts
        )
        return await run(self.policy, fetch, provider=provider)

    async def _follow(
        self, trail: _Trail, *, provider: str, limits: Limits, trusted_hosts: Collection[str]
    ) -> ImageData:
        """One download attempt; redirect hops are followed here, so a hop is not an attempt."""
        while True:
            await check_url(trail.url, trusted_hosts=trusted_hosts)
            try:
                return await self._download_once(trail.url, provider=provider, limits=limits)
            except _Redirect as redirect:
                trail.hops += 1
                if trail.hops > MAX_REDIRECTS:
                    raise ProviderUnavailable(
                        f"{provider}: too many redirects for an image", provider=provider
                    ) from None
                trail.url = redirect.location

    async def _download_once(self, url: str, *, provider: str, limits: Limits) -> ImageData:
        """One GET of the image, redirects not followed (_follow judges each hop)."""
        if not url.startswith(("http://", "https://")):
            raise ProviderUnavailable(f"{provider} returned an unusable image address", provider=provider)
        timeout = aiohttp.ClientTimeout(total=limits.download_timeout, sock_connect=limits.connect_timeout)
        try:
            # No headers: a result URL may be anywhere public, and a provider key goes only to its API.
            async with self.session.get(url, timeout=timeout, allow_redirects=False) as resp:
                if resp.status in REDIRECTS and resp.headers.get("Location"):
                    raise _Redirect(str(resp.url.join(yarl.URL(resp.headers["Location"]))))
                if resp.status >= 400:
                    error = ProviderUnavailable(
                        f"{provider} made an image but its download failed (HTTP {resp.status})",
                        provider=provider,
                    )
                    if resp.status in RETRY_STATUSES:
                        raise Retryable(error, None)
                    raise error
                body = await _read_capped(resp, limits.max_download_bytes, provider, image=True)
        except TimeoutError as e:
            late = Text("provider.timeout.download", provider=provider)
            raise ProviderTimeout(late, provider=provider) from e
        except aiohttp.ClientError as e:
            error = ProviderUnavailable(f"downloading the image from {provider} failed", provider=provider)
            raise Retryable(error, e) from e
        return image_from_bytes(body, provider)


def image_from_bytes(body: bytes, provider: str) -> ImageData:
    """Wrap result bytes as an image, refusing anything whose magic bytes are not an image."""
    mime = sniff_mime(body)
    if mime not in {"image/png", "image/jpeg", "image/webp", "image/gif", "image/bmp"}:
        raise ProviderUnavailable(f"{provider} returned something that is not an image", provider=provider)
    if not looks_complete(body, mime):
        raise ProviderUnavailable(f"{provider} returned a truncated image; try again", provider=provider)
    return ImageData(body, mime)


def image_from_base64(value: Base64, provider: str) -> ImageData:
    """Decode base64 (with or without a data: prefix, or still in the answer's bytes) into a checked image."""
    if isinstance(value, str) and value.startswith("data:"):
        value = value.partition(",")[2]
    try:
        raw = value.decode() if isinstance(value, Base64Blob) else base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ProviderUnavailable(
            f"{provider} returned damaged image data (bad base64); try again", provider=provider
        ) from None
    return image_from_bytes(raw, provider)


def looks_complete(body: bytes, mime: str) -> bool:
    """Cheap end-of-file check that catches images cut short in transit (no decoding)."""
    if mime == "image/png":
        return body.rstrip(b"\0").endswith(b"IEND\xaeB`\x82")
    if mime == "image/jpeg":
        return b"\xff\xd9" in body[-64:]
    if mime == "image/webp":
        return len(body) >= 12 and int.from_bytes(body[4:8], "little") + 8 <= len(body)
    return True


async def _read_capped(
    resp: aiohttp.ClientResponse, cap: int, provider: str, *, image: bool = False
) -> bytes:
    """Read a body, refusing it as soon as it passes the cap (Content-Length checked first).

    Within a job (an Intake is set), a large body first waits for its share of the result-bytes
    budget, and an image that must be re-encoded anyway is decoded while it arrives.
    """
    announced = resp.content_length
    if announced is not None and announced > cap:
        raise ProviderUnavailable(f"{provider} sent {announced} bytes, over the {cap} cap", provider=provider)
    intake = current_intake()
    if intake is not None and announced is not None and announced > BIG_BODY:
        await intake.reserve(announced)
    arrival = Arrival(intake if image else None, announced)
    size = 0
    try:
        async for chunk in resp.content.iter_any():  # whatever arrived: fewer, larger pieces
            size += len(chunk)
            if size > cap:
                raise ProviderUnavailable(f"{provider} sent more than {cap} bytes", provider=provider)
            arrival.add(chunk)
    except BaseException:
        arrival.abort()
        raise
    return await arrival.body(join_off_loop=size > BIG_BODY)  # joining megabytes would stall the loop


def _try_json(body: bytes) -> Any:
    """JSON if the body parses, else None."""
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None


def _origin(url: yarl.URL) -> tuple[str, str | None, int | None]:
    """Scheme, host and port: what must stay the same for a call to keep its key and its body."""
    return url.scheme, url.host, url.port


async def _next_hop(call: _Call, answer: _Answer, provider: str) -> _Call:
    """The request a redirect asks for, when it stays on the configured origin; else ProviderUnavailable.

    A redirect to another origin is refused rather than followed without the key: a 307/308 would
    still carry the user's prompt and images there, each wire format names its key differently
    (Authorization, x-goog-api-key, ?key=), and no real image API moves its calls to another host.
    The message names no address: it is shown to users.
    """
    refused = ProviderUnavailable(
        f"{provider} redirected the request to another host; refused", provider=provider
    )
    current = yarl.URL(call.url)
    try:
        target = current.join(yarl.URL(answer.headers.get("Location", "")))
    except ValueError:
        raise refused from None
    if _origin(target) != _origin(current):
        raise refused
    try:  # the same guard as downloads: a no-op on the trusted provider host, kept as a second lock
        await check_url(str(target), trusted_hosts={current.host or ""})
    except InputError:
        raise refused from None
    if answer.status == 303 or (answer.status in (301, 302) and call.method == "POST"):
        return _Call("HEAD" if call.method == "HEAD" else "GET", str(target), None, None, None)
    return _Call(call.method, str(target), call.json_body, call.form, call.body)  # 307/308: as sent


@dataclass(frozen=True, slots=True)
class _Call:
    """One API request as sent; a redirect may change its method, URL and body."""

    method: str
    url: str
    json_body: Any
    form: FormFactory | None
    body: bytes | None


@dataclass(frozen=True, slots=True)
class _Answer:
    """What came back from one HTTP exchange."""

    status: int
    headers: Mapping[str, str]
    body: bytes


@dataclass(slots=True)
class _Trail:
    """Where an image download has got to: its current address and the redirects followed so far.

    It outlives one attempt, so a retry resumes at the redirected address and the hop cap covers the
    whole download.
    """

    url: str
    hops: int = 0


class _Redirect(Exception):
    """Internal: the image moved; the new location is checked before it is fetched."""

    def __init__(self, location: str) -> None:
        super().__init__(location)
        self.location = location
