"""Gemini's streamed generateContent (`:streamGenerateContent?alt=sse`): a thinking model's interim
thought images are handed on while it works, and the chunks become one answer at the end.

The merged answer has the shape of a non-streamed one (parts in order, the pieces of one text part
joined, the last value of everything else), so `GeminiProvider.read_answer` makes of it exactly the
result a non-streamed call would have given. A streamed call gets what every call gets: the key ring
(rotation, pacing, the ON_SEND hook), the retry policy before the answer begins (429, 503, a lost
connection), Google's error mapping, the response-size cap, the timeouts and the telemetry. Once the
answer has begun nothing is retried: a stream cut short is a clear error, never a hang.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import Callable
from typing import Any

import aiohttp

from bot.errors import ProviderError, ProviderTimeout, ProviderUnavailable
from bot.i18n import Text
from bot.providers.base import JsonDict, Preview, PreviewHook
from bot.providers.common import ProviderBase
from bot.providers.http import BIG_BODY, RETRY_STATUSES, image_from_base64
from bot.providers.retry import Retryable, run
from bot.providers.slices import sliced, with_length
from bot.providers.wire import Base64, loads

log = logging.getLogger(__name__)

#: The method to POST, with the query asking for server-sent events (else Google sends a JSON array).
STREAM_METHOD = ":streamGenerateContent?alt=sse"
#: The longest thought summary handed on.
MAX_SUMMARY = 200
#: Error bodies are read up to this many bytes (they are a few hundred).
MAX_ERROR_BODY = 1024 * 1024
#: An event ends at a blank line (Google ends its lines with CRLF).
_EVENT_ENDS = (b"\r\n\r\n", b"\n\n")
_BOLD = re.compile(r"\*\*(.+?)\*\*", re.DOTALL)
_SIGNATURE_KEYS = ("thoughtSignature", "thought_signature")
_TEXT_KEYS = frozenset({"text", "thought", *_SIGNATURE_KEYS})


def thought_summary(text: str) -> str | None:
    """One line of a thought: its bold title (`**...**`) when it has one, else its first line, trimmed."""
    match = _BOLD.search(text)
    line = match.group(1) if match else next((ln for ln in text.splitlines() if ln.strip()), "")
    return " ".join(line.split())[:MAX_SUMMARY].strip() or None


class SseSplitter:
    """Cuts a text/event-stream body into its events as the bytes arrive."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._scanned = 0

    def feed(self, piece: bytes) -> list[bytearray]:
        """The events this piece completes (each without its closing blank line)."""
        self._buffer += piece
        events: list[bytearray] = []
        while (found := self._boundary()) is not None:
            end, after = found
            # The finished event keeps the buffer (no copy of a megabyte image); the rest moves on.
            event, self._buffer = self._buffer, self._buffer[after:]
            del event[end:]
            self._scanned = 0
            events.append(event)
        self._scanned = max(0, len(self._buffer) - 3)  # a separator may straddle two pieces
        return events

    def _boundary(self) -> tuple[int, int] | None:
        """Where the first complete event ends, and where the next one starts."""
        hits = [
            (at, at + len(end)) for end in _EVENT_ENDS if (at := self._buffer.find(end, self._scanned)) >= 0
        ]
        return min(hits) if hits else None

    @property
    def unfinished(self) -> bool:
        """Whether bytes of an event that never ended are left over."""
        return bool(self._buffer.strip())


def event_data(event: bytes | bytearray) -> bytes | None:
    """The data of one event (its `data:` lines joined); None for a comment or a keep-alive."""
    data = [
        line.rstrip(b"\r")[5:].removeprefix(b" ") for line in event.split(b"\n") if line.startswith(b"data:")
    ]
    return b"\n".join(data) if data else None


def decode_json(data: bytes, provider: str) -> Any:
    """A JSON document (a large one with its base64 images left in the bytes)."""
    try:
        return loads(data) if len(data) > BIG_BODY else json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise ProviderUnavailable(
            f"{provider} sent a malformed answer (not valid JSON); try again later", provider=provider
        ) from None


def decode_event(event: bytes | bytearray, provider: str) -> Any:
    """One event's JSON; None when it carries no data."""
    data = event_data(event)
    return None if data is None else decode_json(data, provider)


def _signature(part: JsonDict) -> str | None:
    """A part's thought signature, in either spelling."""
    return next((part[key] for key in _SIGNATURE_KEYS if part.get(key) is not None), None)


def _text_only(part: JsonDict) -> bool:
    """Whether a part is a piece of text (maybe a thought, maybe signed) and nothing else."""
    return isinstance(part.get("text"), str) and set(part) <= _TEXT_KEYS


def _inline(part: JsonDict) -> JsonDict | None:
    """A part's inline blob, in either spelling."""
    blob = part.get("inlineData", part.get("inline_data"))
    return blob if isinstance(blob, dict) else None


class StreamedAnswer:
    """The chunks of one streamed answer, merged into the shape of a non-streamed one."""

    def __init__(self) -> None:
        self.top: JsonDict = {}
        self.candidate: JsonDict | None = None
        self.parts: list[JsonDict] = []
        self.role: str | None = None
        #: Whether the answer said it was over (a finish reason, or a blocked prompt).
        self.complete = False

    def add(self, chunk: Any) -> list[tuple[Base64, str | None]]:
        """Merge one chunk; the thought images it brought, each with the latest thought's summary."""
        if not isinstance(chunk, dict):
            return []
        candidates = chunk.get("candidates")
        self.top.update({k: v for k, v in chunk.items() if k != "candidates" and v is not None})
        feedback = self.top.get("promptFeedback", self.top.get("prompt_feedback"))
        self.complete |= isinstance(feedback, dict) and bool(
            feedback.get("blockReason", feedback.get("block_reason"))
        )
        if not isinstance(candidates, list) or not candidates or not isinstance(candidates[0], dict):
            return []
        candidate = candidates[0]
        self.candidate = self.candidate or {}
        self.candidate.update({k: v for k, v in candidate.items() if k != "content" and v is not None})
        self.complete |= bool(candidate.get("finishReason", candidate.get("finish_reason")))
        content = candidate.get("content")
        if not isinstance(content, dict):
            return []
        self.role = content.get("role") or self.role
        found: list[tuple[Base64, str | None]] = []
        for part in content.get("parts") or []:
            if isinstance(part, dict) and self._merge(part):
                blob = _inline(part)
                if part.get("thought") is True and blob is not None and blob.get("data"):
                    found.append((blob["data"], self._latest_thought()))
        return found

    def _merge(self, part: JsonDict) -> bool:
        """Add a part, joining a piece of text to the text before it; whether it became a part.

        Pieces of one text part (a thought, or not) are joined whichever of them carries the
        signature; two signed pieces are two parts. An empty unsigned piece adds nothing.
        """
        last = self.parts[-1] if self.parts else None
        if _text_only(part):
            signed = _signature(part)
            if not part["text"] and signed is None:
                return False
            if (
                last is not None
                and _text_only(last)
                and bool(last.get("thought")) == bool(part.get("thought"))
                and not (signed is not None and _signature(last) is not None)
            ):
                joined = {**last, "text": last["text"] + part["text"]}
                if signed is not None:
                    joined[next(k for k in _SIGNATURE_KEYS if part.get(k) is not None)] = signed
                self.parts[-1] = joined
                return False
        self.parts.append(part)
        return True

    def _latest_thought(self) -> str | None:
        """The summary of the latest thought text so far."""
        for part in reversed(self.parts):
            if part.get("thought") is True and isinstance(part.get("text"), str):
                return thought_summary(part["text"])
        return None

    def merged(self) -> JsonDict:
        """The whole answer, as generateContent would have sent it."""
        answer = dict(self.top)
        if self.candidate is not None:
            candidate = dict(self.candidate)
            if self.parts:
                candidate["content"] = {"parts": self.parts, "role": self.role or "model"}
            answer["candidates"] = [candidate]
        return answer


class _Previews:
    """Hands thought images to the preview hook one at a time, the latest first, without ever holding
    up the stream: the base64 is decoded in a thread, and a newer image replaces one not yet shown."""

    def __init__(self, hook: PreviewHook, provider: str) -> None:
        self._hook = hook
        self._provider = provider
        self._latest: tuple[Base64, str | None] | None = None
        self._task: asyncio.Task[None] | None = None

    def offer(self, data: Base64, summary: str | None) -> None:
        """A thought image arrived: show it once the one being shown is done."""
        self._latest = (data, summary)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._show())

    async def _show(self) -> None:
        """Show the latest image until none is waiting (a failure only costs that preview)."""
        while self._latest is not None:
            data, summary = self._latest
            self._latest = None
            try:
                image = await asyncio.to_thread(image_from_base64, data, self._provider)
                await self._hook(Preview(image, summary))
            except Exception:
                log.debug("%s: a preview could not be shown", self._provider, exc_info=True)

    def stop(self) -> None:
        """The answer is complete (or failed): previews still on their way are pointless now."""
        self._latest = None
        if self._task is not None:
            self._task.cancel()


class _StreamCall:
    """One streamed generateContent request, with its keys and retries."""

    def __init__(self, provider: ProviderBase, url: str, body: bytes, previews: _Previews) -> None:
        self.provider = provider
        self.name = provider.name
        self.url = url
        self.body = body
        self.previews = previews

    async def with_key(self, key: str | None) -> JsonDict:
        """The answer, sent with this key; failures before the answer begins are retried."""
        http = self.provider.http
        return await run(http.policy, lambda: self._once(key), provider=self.name)

    async def _once(self, key: str | None) -> JsonDict:
        """One attempt, timed: retryable failures before the answer begins become Retryable."""
        http, limits = self.provider.http, self.provider.limits
        timeout = aiohttp.ClientTimeout(total=limits.request_timeout, sock_connect=limits.connect_timeout)
        started, reading = time.monotonic(), False
        try:
            async with http.session.post(
                self.url,
                data=sliced(self.body),
                headers={
                    **with_length(self.provider.auth_headers(key), self.body),
                    "Content-Type": "application/json",
                },
                timeout=timeout,
                allow_redirects=False,
            ) as resp:
                if resp.status >= 300:
                    raise await self._refusal(resp)
                reading = True
                return await self._read(resp)
        except TimeoutError as e:
            seconds = f"{limits.request_timeout:.0f}"
            late = Text("provider.timeout.answer", provider=self.name, seconds=seconds)
            raise ProviderTimeout(late, provider=self.name) from e
        except aiohttp.ClientError as e:
            if reading:  # part of the answer came: another attempt would be another (billed) image
                raise ProviderUnavailable(
                    f"{self.name} stopped sending the answer half-way; try again", provider=self.name
                ) from e
            unreachable = ProviderUnavailable(
                f"{self.name} could not be reached ({type(e).__name__}); try again later", provider=self.name
            )
            raise Retryable(unreachable, e) from e
        finally:
            http.policy.telemetry.request_done(self.name, time.monotonic() - started)

    async def _refusal(self, resp: aiohttp.ClientResponse) -> BaseException:
        """The typed error of a non-2xx answer (a streamed error body is a one-element JSON list)."""
        if resp.status < 400:  # a redirect: the streamed call follows none
            return ProviderUnavailable(
                f"{self.name} sent an unexpected answer (HTTP {resp.status})", provider=self.name
            )
        body = bytearray()
        async for piece in resp.content.iter_any():  # an error body is small: more is not read
            body += piece
            if len(body) > MAX_ERROR_BODY:
                break
        try:
            parsed = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            parsed = None
        error = self.provider.error_mapper()(resp.status, parsed, resp.headers)
        if resp.status in RETRY_STATUSES and error.retryable:
            return Retryable(error, None)
        return error

    async def _read(self, resp: aiohttp.ClientResponse) -> JsonDict:
        """Read the events as they come, merging them and showing thought images; the whole answer."""
        answer, splitter, size = StreamedAnswer(), SseSplitter(), 0
        whole = bytearray()  # the body of a server that ignored alt=sse: one JSON document
        sse = resp.headers.get("Content-Type", "").startswith("text/event-stream")
        cap = self.provider.limits.max_response_bytes
        async for piece in resp.content.iter_any():
            size += len(piece)
            if size > cap:
                raise ProviderUnavailable(f"{self.name} sent more than {cap} bytes", provider=self.name)
            if not sse:
                whole += piece
            for event in splitter.feed(piece) if sse else ():
                self._take(answer, await self._decode(event, decode_event))
        if not sse:
            self._take(answer, await self._decode(whole, decode_json))
        if splitter.unfinished or not answer.complete:
            raise self._cut()
        return answer.merged()

    async def _decode(self, data: bytes | bytearray, decode: Callable[[Any, str], Any]) -> Any:
        """JSON decoded in a thread when large (megabytes of base64 would stall the event loop)."""
        if len(data) > BIG_BODY:
            return await asyncio.to_thread(decode, data, self.name)
        return decode(data, self.name)

    def _take(self, answer: StreamedAnswer, chunk: Any) -> None:
        """Merge one chunk (a list: each of its items); an error ends the call."""
        for item in chunk if isinstance(chunk, list) else [chunk]:
            if isinstance(item, dict) and item.get("error") is not None:
                raise self._error_event(item)
            for data, summary in answer.add(item):
                self.previews.offer(data, summary)

    def _error_event(self, item: JsonDict) -> ProviderError:
        """An error sent in the stream, mapped as its HTTP twin would be (its code is the status)."""
        code = item["error"].get("code") if isinstance(item["error"], dict) else None
        status = code if isinstance(code, int) and 400 <= code < 600 else 500
        return self.provider.error_mapper()(status, item, {})

    def _cut(self) -> ProviderError:
        """The stream ended before the answer did."""
        return ProviderUnavailable(
            f"{self.name} stopped sending the answer half-way; try again", provider=self.name
        )


async def stream_answer(
    provider: ProviderBase, url: str, body: bytes | JsonDict, on_preview: PreviewHook
) -> JsonDict:
    """POST a streamed generateContent request; each thought image goes to on_preview as it arrives.

    The body comes as JSON bytes (encoded off the event loop); a dict is encoded here, in a thread.
    Returns the merged answer, to be read like a non-streamed one.
    """
    if not isinstance(body, bytes):
        body = (await asyncio.to_thread(json.dumps, body)).encode()
    previews = _Previews(on_preview, provider.name)
    call = _StreamCall(provider, url, body, previews)
    try:
        return await provider.keys.run(call.with_key)
    finally:
        previews.stop()
